//! The keywords of the Duet grammar, shared by the parser (which matches them case-insensitively) and the
//! printer (which back-quotes any name that would read as one of them).

pub(crate) const ALTER: &str = "ALTER";
pub(crate) const BY: &str = "BY";
pub(crate) const CLUSTER: &str = "CLUSTER";
pub(crate) const CLUSTERID: &str = "CLUSTERID";
pub(crate) const CLUSTER_ID: &str = "CLUSTER_ID";
pub(crate) const CONNECTOR: &str = "CONNECTOR";
pub(crate) const CREATE: &str = "CREATE";
pub(crate) const DETAILS: &str = "DETAILS";
pub(crate) const DROP: &str = "DROP";
pub(crate) const EXISTS: &str = "EXISTS";
pub(crate) const EXTRACTOR: &str = "EXTRACTOR";
pub(crate) const IF: &str = "IF";
pub(crate) const LIST: &str = "LIST";
pub(crate) const MODIFY: &str = "MODIFY";
pub(crate) const NOT: &str = "NOT";
pub(crate) const OF: &str = "OF";
pub(crate) const PASSWORD: &str = "PASSWORD";
pub(crate) const PIPE: &str = "PIPE";
pub(crate) const PIPES: &str = "PIPES";
pub(crate) const PROCESSOR: &str = "PROCESSOR";
pub(crate) const REPLACE: &str = "REPLACE";
pub(crate) const SET: &str = "SET";
pub(crate) const SHOW: &str = "SHOW";
pub(crate) const SINK: &str = "SINK";
pub(crate) const SOURCE: &str = "SOURCE";
pub(crate) const START: &str = "START";
pub(crate) const STOP: &str = "STOP";
pub(crate) const USED: &str = "USED";
pub(crate) const USER: &str = "USER";
pub(crate) const VERSION: &str = "VERSION";
pub(crate) const WHERE: &str = "WHERE";
pub(crate) const WITH: &str = "WITH";

// First words of the data statements; not reserved in pipe and user names (which are never ambiguous with
// them), so they are left out of `ALL`.
pub(crate) const ALIGNED: &str = "ALIGNED";
pub(crate) const CHILD: &str = "CHILD";
pub(crate) const COUNT: &str = "COUNT";
pub(crate) const DATABASE: &str = "DATABASE";
pub(crate) const DATABASES: &str = "DATABASES";
pub(crate) const DELETE: &str = "DELETE";
pub(crate) const DEVICES: &str = "DEVICES";
pub(crate) const FLUSH: &str = "FLUSH";
pub(crate) const FROM: &str = "FROM";
pub(crate) const GROUP: &str = "GROUP";
pub(crate) const INSERT: &str = "INSERT";
pub(crate) const INTO: &str = "INTO";
pub(crate) const NODES: &str = "NODES";
pub(crate) const PATHS: &str = "PATHS";
pub(crate) const SELECT: &str = "SELECT";
pub(crate) const STORAGE: &str = "STORAGE";
pub(crate) const TIMESERIES: &str = "TIMESERIES";
pub(crate) const TO: &str = "TO";
pub(crate) const CONFIGNODES: &str = "CONFIGNODES";
pub(crate) const DATA: &str = "DATA";
pub(crate) const DATANODES: &str = "DATANODES";
pub(crate) const REGIONS: &str = "REGIONS";
pub(crate) const SCHEMA: &str = "SCHEMA";
pub(crate) const VARIABLES: &str = "VARIABLES";
pub(crate) const KILL: &str = "KILL";
pub(crate) const TTL: &str = "TTL";
pub(crate) const UNSET: &str = "UNSET";
pub(crate) const INF: &str = "INF";
pub(crate) const ON: &str = "ON";
pub(crate) const QUERY: &str = "QUERY";
pub(crate) const QUERIES: &str = "QUERIES";
pub(crate) const PROCESSLIST: &str = "PROCESSLIST";
pub(crate) const ALL_WORD: &str = "ALL";
pub(crate) const ROLE: &str = "ROLE";
pub(crate) const GRANT: &str = "GRANT";
pub(crate) const REVOKE: &str = "REVOKE";
pub(crate) const OPTION: &str = "OPTION";
pub(crate) const PRIVILEGES: &str = "PRIVILEGES";

/// The privilege names GRANT and REVOKE accept (IoTDB 2.0's tree-model and global privileges, and
/// its composites READ, WRITE and ALL).
pub(crate) const PRIVILEGE_NAMES: &[&str] = &[
    "READ_DATA",
    "WRITE_DATA",
    "READ_SCHEMA",
    "WRITE_SCHEMA",
    "MANAGE_USER",
    "MANAGE_ROLE",
    "USE_TRIGGER",
    "USE_UDF",
    "USE_CQ",
    "USE_PIPE",
    "USE_MODEL",
    "EXTEND_TEMPLATE",
    "MANAGE_DATABASE",
    "MAINTAIN",
    "SYSTEM",
    "SECURITY",
    "AUDIT",
    "READ",
    "WRITE",
    "ALL",
];

/// Every pipe-statement keyword above; a name equal to one of these (ignoring case) is printed back-quoted.
pub(crate) const ALL: &[&str] = &[
    ALTER, BY, CLUSTER, CLUSTERID, CLUSTER_ID, CONNECTOR, CREATE, DETAILS, DROP, EXISTS, EXTRACTOR,
    IF, LIST, MODIFY, NOT, OF, PASSWORD, PIPE, PIPES, PROCESSOR, REPLACE, SET, SHOW, SINK, SOURCE,
    START, STOP, USED, USER, VERSION, WHERE, WITH, ROLE, GRANT, REVOKE, OPTION, PRIVILEGES,
];

pub(crate) fn is_keyword(word: &str) -> bool {
    ALL.iter().any(|keyword| keyword.eq_ignore_ascii_case(word))
}
