//! The query RPCs that carry paths and times instead of SQL (`executeRawDataQuery(V2)`,
//! `executeLastDataQuery(V2)`, the fast last queries, `executeAggregationQuery(V2)`,
//! `executeGroupByQueryIntervalQuery`), turned into the engine's `Select` the way IoTDB's
//! `StatementGenerator` turns them into a query statement, so they share the SQL query path.
//!
//! Each path is selected from `root` as its suffix, so a result column is named by its full path and
//! paths of different devices are not crossed (`SELECT sg.d1.s1, sg.d2.s2 FROM root`).

use duet_parser::{
    BinaryOp, DurationLiteral, Expr, GroupByTime, Literal, Path, PathNode, Select, SelectItem,
    TimeValue,
};
use duet_proto::status::StatusCode;
use duet_proto::t;

use crate::status_codes::StatementError;

/// What every query RPC's request carries for its answer's paging: the fetch size and the timeout.
pub trait Paging {
    fn fetch_size(&self) -> Option<i32>;
    fn timeout(&self) -> Option<i64>;
}

macro_rules! paging {
    ($($request:ty),*) => {$(
        impl Paging for $request {
            fn fetch_size(&self) -> Option<i32> {
                self.fetch_size
            }
            fn timeout(&self) -> Option<i64> {
                self.timeout
            }
        }
    )*};
}

paging!(
    t::TSRawDataQueryReq,
    t::TSLastDataQueryReq,
    t::TSFastLastDataQueryForOnePrefixPathReq,
    t::TSFastLastDataQueryForOneDeviceReq,
    t::TSAggregationQueryReq,
    t::TSGroupByQueryIntervalReq
);

/// IoTDB's `TAggregationType` names, by value (common.thrift).
const AGGREGATION_NAMES: &[&str] = &[
    "COUNT",
    "AVG",
    "SUM",
    "FIRST_VALUE",
    "LAST_VALUE",
    "MAX_TIME",
    "MIN_TIME",
    "MAX_VALUE",
    "MIN_VALUE",
    "EXTREME",
    "COUNT_IF",
    "TIME_DURATION",
    "MODE",
    "COUNT_TIME",
    "STDDEV",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "VARIANCE",
    "VAR_POP",
    "VAR_SAMP",
    "MAX_BY",
    "MIN_BY",
    "UDAF",
    "FIRST",
    "LAST",
    "FIRST_BY",
    "LAST_BY",
    "MIN",
    "MAX",
    "COUNT_ALL",
    "APPROX_COUNT_DISTINCT",
    "APPROX_MOST_FREQUENT",
    "APPROX_PERCENTILE",
    "CORR",
    "COVAR_POP",
    "COVAR_SAMP",
    "REGR_SLOPE",
    "REGR_INTERCEPT",
    "SKEWNESS",
    "KURTOSIS",
    "PERCENTILE",
    "RATE",
    "INCREASE",
    "IRATE",
    "DELTA",
];

/// The name of an aggregation type (the engine reports the ones it does not compute).
pub fn aggregation_name(kind: t::TAggregationType) -> Result<&'static str, StatementError> {
    usize::try_from(kind.0)
        .ok()
        .and_then(|i| AGGREGATION_NAMES.get(i).copied())
        .ok_or_else(|| {
            StatementError::new(
                StatusCode::IllegalParameter,
                format!("unknown aggregation type {}", kind.0),
            )
        })
}

fn illegal_path(path: &str) -> StatementError {
    StatementError::new(
        StatusCode::IllegalPath,
        format!("{path} is not a legal path"),
    )
}

/// The nodes of a path: split at every dot when the client says its nodes are legal
/// (`legalPathNodes`), else parsed as IoTDB does (back-quoted nodes may hold dots; `*`, `**`).
fn path_nodes(path: &str, legal_nodes: bool) -> Result<Vec<PathNode>, StatementError> {
    let nodes = if legal_nodes {
        let nodes: Vec<PathNode> = path
            .split('.')
            .map(|n| match n {
                "*" => PathNode::One,
                "**" => PathNode::Many,
                _ => PathNode::Name(n.to_string()),
            })
            .collect();
        let rooted = matches!(nodes.first(), Some(PathNode::Name(r)) if r == "root");
        let empty = nodes
            .iter()
            .any(|n| matches!(n, PathNode::Name(s) if s.is_empty()));
        (rooted && !empty).then_some(nodes)
    } else {
        duet_engine::paths::parse_pattern(path)
    };
    match nodes {
        Some(nodes) if nodes.len() >= 2 => Ok(nodes),
        _ => Err(illegal_path(path)),
    }
}

/// A path as the suffix of `root` it is selected as.
fn below_root(path: &str, legal_nodes: bool) -> Result<Path, StatementError> {
    let nodes = path_nodes(path, legal_nodes)?;
    Ok(Path(nodes[1..].to_vec()))
}

fn root() -> Path {
    Path(vec![PathNode::Name("root".to_string())])
}

fn time_cmp(op: BinaryOp, value: i64) -> Expr {
    Expr::Binary {
        left: Box::new(Expr::Time),
        op,
        right: Box::new(Expr::Literal(Literal::Integer(value.to_string()))),
    }
}

/// `time >= start AND time < end`.
fn time_range(start: i64, end: i64) -> Expr {
    Expr::Binary {
        left: Box::new(time_cmp(BinaryOp::GtEq, start)),
        op: BinaryOp::And,
        right: Box::new(time_cmp(BinaryOp::Lt, end)),
    }
}

fn no_paths() -> StatementError {
    StatementError::new(StatusCode::IllegalParameter, "the request names no paths")
}

/// One select item per path, each below `root` (an error when there are none).
fn path_items(paths: &[String], legal_nodes: bool) -> Result<Vec<SelectItem>, StatementError> {
    if paths.is_empty() {
        return Err(no_paths());
    }
    paths
        .iter()
        .map(|p| {
            Ok(SelectItem::Path {
                path: below_root(p, legal_nodes)?,
                alias: None,
            })
        })
        .collect()
}

/// `executeRawDataQuery(V2)`: the series' points with `startTime <= time < endTime`, aligned by time.
pub fn raw_data(req: &t::TSRawDataQueryReq) -> Result<Select, StatementError> {
    let items = path_items(&req.paths, req.legal_path_nodes.unwrap_or(false))?;
    let mut query = Select::new(items, vec![root()]);
    query.condition = Some(time_range(req.start_time, req.end_time));
    Ok(query)
}

/// `executeLastDataQuery(V2)`: each series' newest point, only if its time is `>= time`
/// (`i64::MIN` means no bound, as in IoTDB).
pub fn last_data(paths: &[String], time: i64, legal: bool) -> Result<Select, StatementError> {
    let mut query = Select::new(path_items(paths, legal)?, vec![root()]);
    query.last = true;
    if time != i64::MIN {
        query.condition = Some(time_cmp(BinaryOp::GtEq, time));
    }
    Ok(query)
}

/// `executeFastLastDataQueryForOneDeviceV2`: the last query of `deviceId.sensor` for each sensor,
/// without a time bound (IoTDB converts it to exactly that on a cache miss).
pub fn fast_last_for_device(
    req: &t::TSFastLastDataQueryForOneDeviceReq,
) -> Result<Select, StatementError> {
    let paths: Vec<String> = req
        .sensors
        .iter()
        .map(|s| format!("{}.{}", req.device_id, s))
        .collect();
    last_data(&paths, i64::MIN, req.legal_path_nodes.unwrap_or(false))
}

/// `executeFastLastDataQueryForOnePrefixPath`: the last point of every series under the prefix whose
/// nodes `prefixes` lists (`["root", "sg", "d1"]`; an element with dots is split into its nodes).
pub fn fast_last_for_prefix(prefixes: &[String]) -> Result<Select, StatementError> {
    let joined = prefixes.join(".");
    let mut nodes = path_nodes(&joined, false)?;
    nodes.push(PathNode::Many);
    let mut query = Select::new(
        vec![SelectItem::Path {
            path: Path(nodes[1..].to_vec()),
            alias: None,
        }],
        vec![root()],
    );
    query.last = true;
    Ok(query)
}

fn group_by(start: i64, end: i64, interval: i64, step: Option<i64>) -> GroupByTime {
    GroupByTime {
        start: TimeValue::Value(start),
        end: TimeValue::Value(end),
        left_open: false,
        interval: DurationLiteral {
            text: interval.to_string(),
        },
        step: step.map(|s| DurationLiteral {
            text: s.to_string(),
        }),
    }
}

fn missing(what: &str) -> StatementError {
    StatementError::new(
        StatusCode::IllegalParameter,
        format!("{what} must be set when an interval is given"),
    )
}

/// `executeAggregationQuery(V2)`: `aggregations[i](paths[i])`; with `interval`, grouped by
/// `[startTime, endTime)` windows of `interval` every `slidingStep` (default: the interval); else over
/// `startTime <= time < endTime` when `startTime` is set, else over all data.
pub fn aggregation(req: &t::TSAggregationQueryReq) -> Result<Select, StatementError> {
    let legal = req.legal_path_nodes.unwrap_or(false);
    if req.paths.is_empty() {
        return Err(no_paths());
    }
    if req.paths.len() != req.aggregations.len() {
        return Err(StatementError::new(
            StatusCode::IllegalParameter,
            format!(
                "{} paths but {} aggregations: they pair up one to one",
                req.paths.len(),
                req.aggregations.len()
            ),
        ));
    }
    let items = req
        .paths
        .iter()
        .zip(&req.aggregations)
        .map(|(p, a)| {
            Ok(SelectItem::Aggregate {
                function: aggregation_name(*a)?.to_ascii_lowercase(),
                path: below_root(p, legal)?,
                alias: None,
            })
        })
        .collect::<Result<Vec<_>, StatementError>>()?;
    let mut query = Select::new(items, vec![root()]);
    if let Some(interval) = req.interval {
        let start = req.start_time.ok_or_else(|| missing("startTime"))?;
        let end = req.end_time.ok_or_else(|| missing("endTime"))?;
        query.group_by = Some(group_by(start, end, interval, req.sliding_step));
    } else if let Some(start) = req.start_time {
        query.condition = Some(time_range(start, req.end_time.unwrap_or(i64::MAX)));
    }
    Ok(query)
}

/// `executeGroupByQueryIntervalQuery`: one aggregation of `device.measurement` over `[startTime,
/// endTime)` windows of `interval`; the result column is named by the aggregation type (`MAX_VALUE`).
pub fn group_by_interval(
    req: &t::TSGroupByQueryIntervalReq,
) -> Result<(Select, &'static str), StatementError> {
    let name = aggregation_name(req.aggregation_type)?;
    let device = path_nodes(&req.device, false)?;
    let start = req.start_time.ok_or_else(|| missing("startTime"))?;
    let end = req.end_time.ok_or_else(|| missing("endTime"))?;
    let interval = req
        .interval
        .ok_or_else(|| StatementError::new(StatusCode::IllegalParameter, "interval must be set"))?;
    let mut query = Select::new(
        vec![SelectItem::Aggregate {
            function: name.to_ascii_lowercase(),
            path: Path(vec![PathNode::Name(req.measurement.clone())]),
            alias: None,
        }],
        vec![Path(device)],
    );
    query.group_by = Some(group_by(start, end, interval, None));
    Ok((query, name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn raw(paths: &[&str], legal: Option<bool>) -> t::TSRawDataQueryReq {
        t::TSRawDataQueryReq::new(
            1,
            paths.iter().map(|p| p.to_string()).collect(),
            None,
            10,
            20,
            2,
            None,
            None,
            None,
            legal,
        )
    }

    #[test]
    fn raw_data_selects_each_path_from_root_in_a_half_open_range() {
        let query = raw_data(&raw(&["root.sg.d1.s1", "root.sg.`d.2`.s2"], None)).unwrap();
        assert_eq!(
            query.to_string(),
            "SELECT sg.d1.s1, sg.`d.2`.s2 FROM root WHERE time >= 10 AND time < 20"
        );
        let legal = raw_data(&raw(&["root.sg.d1.s1"], Some(true))).unwrap();
        assert_eq!(legal.items.len(), 1);
        for bad in ["sg.d1.s1", "root", "root..s1", ""] {
            let e = raw_data(&raw(&[bad], None)).unwrap_err();
            assert_eq!(e.code, StatusCode::IllegalPath, "{bad}");
        }
        assert_eq!(
            raw_data(&raw(&[], None)).unwrap_err().code,
            StatusCode::IllegalParameter
        );
    }

    #[test]
    fn last_data_bounds_time_unless_it_is_the_minimum() {
        let paths = vec!["root.sg.d1.s1".to_string()];
        let q = last_data(&paths, 5, false).unwrap();
        assert_eq!(
            q.to_string(),
            "SELECT LAST sg.d1.s1 FROM root WHERE time >= 5"
        );
        let q = last_data(&paths, i64::MIN, false).unwrap();
        assert_eq!(q.to_string(), "SELECT LAST sg.d1.s1 FROM root");
        let q = fast_last_for_prefix(&["root".into(), "sg".into()]).unwrap();
        assert_eq!(q.to_string(), "SELECT LAST sg.** FROM root");
    }

    #[test]
    fn aggregations_pair_with_paths_and_group_by_when_an_interval_is_given() {
        let mut req = t::TSAggregationQueryReq::new(
            1,
            2,
            vec!["root.sg.d1.s1".to_string(), "root.sg.d1.s2".to_string()],
            vec![t::TAggregationType::COUNT, t::TAggregationType::MAX_VALUE],
            Some(0),
            Some(100),
            None,
            None,
            None,
            None,
            None,
        );
        let q = aggregation(&req).unwrap();
        assert_eq!(
            q.to_string(),
            "SELECT count(sg.d1.s1), max_value(sg.d1.s2) FROM root WHERE time >= 0 AND time < 100"
        );
        req.interval = Some(10);
        let q = aggregation(&req).unwrap();
        assert!(q.group_by.is_some() && q.condition.is_none());
        req.start_time = None;
        assert_eq!(
            aggregation(&req).unwrap_err().code,
            StatusCode::IllegalParameter
        );
        req.aggregations.pop();
        assert_eq!(
            aggregation(&req).unwrap_err().code,
            StatusCode::IllegalParameter
        );
        assert!(aggregation_name(t::TAggregationType(99)).is_err());
        assert_eq!(
            aggregation_name(t::TAggregationType::DELTA).unwrap(),
            "DELTA"
        );
    }
}
