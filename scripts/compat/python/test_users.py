"""CREATE / ALTER / DROP / LIST USER and authentication with the created users."""

import pytest
from iotdb.Session import Session
from iotdb.utils.exception import StatementExecutionException

from helpers import expect_error, query_df


def users(session):
    df = query_df(session, "LIST USER")
    assert list(df.columns) == ["User"]
    return list(df["User"])


def try_login(server, user, password):
    s = Session(server.host, server.port, user, password)
    try:
        s.open(False)
    except StatementExecutionException as e:
        return str(e)
    s.close()
    return "ok"


def test_list_user_root_only_initially(duetd_factory):
    srv = duetd_factory("fresh")
    s = srv.session()
    try:
        assert users(s) == ["root"]
    finally:
        s.close()


def test_user_lifecycle(server, session):
    assert session.execute_non_query_statement("CREATE USER carol 'carolpw1'") == 0
    try:
        assert "carol" in users(session)
        assert users(session) == sorted(users(session))
        assert try_login(server, "carol", "carolpw1") == "ok"
        assert try_login(server, "carol", "wrong").startswith("801: ")

        assert session.execute_non_query_statement("ALTER USER carol SET PASSWORD 'carolpw2'") == 0
        assert try_login(server, "carol", "carolpw2") == "ok"
        assert try_login(server, "carol", "carolpw1").startswith("801: ")
    finally:
        assert session.execute_non_query_statement("DROP USER carol") == 0
    assert "carol" not in users(session)
    # A dropped user is answered as a wrong password would be.
    assert try_login(server, "carol", "carolpw2") == "801: Authentication failed."


def test_duplicate_and_missing_users(session):
    session.execute_non_query_statement("CREATE USER dave 'davepw12'")
    try:
        msg = expect_error(session, "CREATE USER dave 'another1'", 805)  # USER_ALREADY_EXIST
        assert "dave" in msg
    finally:
        session.execute_non_query_statement("DROP USER dave")
    expect_error(session, "DROP USER dave", 804)
    with pytest.raises(StatementExecutionException):
        session.execute_non_query_statement("DROP USER root")
    assert "root" in users(session)


def test_non_root_user_cannot_manage_users(server, session):
    session.execute_non_query_statement("CREATE USER erin 'erinpw12'")
    try:
        s = server.session("erin", "erinpw12")
        try:
            expect_error(s, "CREATE USER mallory 'mallory1'", 803)
        finally:
            s.close()
        assert "mallory" not in users(session)
    finally:
        session.execute_non_query_statement("DROP USER erin")


def test_privileges_through_the_python_client(server, session):
    session.execute_non_query_statement("CREATE USER frank 'frankpw12'")
    try:
        s = server.session("frank", "frankpw12")
        try:
            msg = expect_error(s, "INSERT INTO root.pyperm.d(time, s) VALUES (1, 1)", 803)
            assert "please add privilege WRITE_DATA on [root.pyperm.d.s]" in msg
            session.execute_non_query_statement(
                "GRANT WRITE_DATA, WRITE_SCHEMA ON root.pyperm.** TO USER frank"
            )
            # The open session has the grant at its next request.
            assert s.execute_non_query_statement(
                "INSERT INTO root.pyperm.d(time, s) VALUES (1, 1)"
            ) == 0
            df = query_df(s, "LIST PRIVILEGES OF USER frank")
            assert list(df.columns) == ["Role", "Path", "Privileges", "GrantOption"]
            assert sorted(df["Privileges"]) == ["WRITE_DATA", "WRITE_SCHEMA"]
        finally:
            s.close()
    finally:
        session.execute_non_query_statement("DROP USER frank")


def test_users_survive_restart(duetd_factory):
    srv = duetd_factory("persist")
    s = srv.session()
    s.execute_non_query_statement("CREATE USER frank 'frankpw1'")
    s.close()
    srv.restart()
    s = srv.session("frank", "frankpw1")
    try:
        assert "frank" in users(s)
    finally:
        s.close()
