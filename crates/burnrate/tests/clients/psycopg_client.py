"""What psycopg 3 sees of burnrate's Postgres endpoint: the suite starts this with a connection
string and asserts on the JSON it prints. Values that are Decimal or dates go out as text so the
comparison stays exact."""

import datetime
import decimal
import json
import sys

import psycopg

url = sys.argv[1]
seen = {}

with psycopg.connect(url) as conn:
    seen["server_version"] = conn.info.parameter_status("server_version")
    seen["ssl"] = conn.pgconn.ssl_in_use

    # The simple protocol: client-side binding sends one query string.
    with psycopg.ClientCursor(conn) as cur:
        cur.execute(
            "SELECT provider_name, sum(billed_cost) FROM costs WHERE provider_name <> %s GROUP BY 1 ORDER BY 1",
            ("nobody",),
        )
        seen["simple"] = [[p, str(s)] for p, s in cur.fetchall()]

    # Server-side binding, text results.
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), max(charge_day) FROM costs WHERE charge_day >= %s AND billed_cost > %s",
            (datetime.date(2026, 1, 20), decimal.Decimal("0.5")),
        )
        n, day = cur.fetchone()
        seen["since"] = [n, day.isoformat()]

    # Prepared on the server from the first execution on, results in binary: numeric, int8,
    # date and timestamptz decoded from their binary forms.
    with conn.cursor(binary=True) as cur:
        totals = []
        for _ in range(7):
            cur.execute(
                "SELECT sum(billed_cost), count(*), min(charge_day), min(charge_period_start) "
                "FROM costs WHERE provider_name = %s",
                ("OpenAI",),
                prepare=True,
            )
            total, n, day, start = cur.fetchone()
            totals.append([str(total), n, day.isoformat(), start.isoformat()])
        seen["binary"] = totals

    # Errors are errors, and the connection stays usable after one.
    try:
        conn.execute("COPY (SELECT 1) TO '/tmp/out.csv'")
        seen["copy"] = "accepted"
    except psycopg.Error as e:
        seen["copy"] = [e.sqlstate, str(e).strip()]
        conn.rollback()
    seen["after_error"] = conn.execute("SELECT count(*) FROM usage").fetchone()[0]

print(json.dumps(seen))
