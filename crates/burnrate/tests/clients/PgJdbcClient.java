// What pgJDBC (Debian's libpostgresql-jdbc-java) sees of burnrate's Postgres endpoint: the
// metadata calls DBeaver and Metabase make on connecting, and a prepared statement run past the
// driver's prepare threshold, after which it asks for results in binary. The suite starts this with
// a JDBC URL, user and password and asserts on the tab-separated lines it prints.

import java.sql.*;

public class PgJdbcClient {
    static void out(String key, Object value) {
        System.out.println(key + "\t" + value);
    }

    static String rows(ResultSet rs, String... columns) throws SQLException {
        StringBuilder b = new StringBuilder();
        while (rs.next()) {
            if (b.length() > 0) b.append(';');
            for (int i = 0; i < columns.length; i++) {
                if (i > 0) b.append(',');
                b.append(rs.getString(columns[i]));
            }
        }
        return b.toString();
    }

    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0], args[1], args[2])) {
            DatabaseMetaData md = c.getMetaData();
            out("product", md.getDatabaseProductName() + " " + md.getDatabaseMajorVersion());
            out("catalogs", rows(md.getCatalogs(), "TABLE_CAT"));
            out("schemas", rows(md.getSchemas(), "TABLE_SCHEM"));
            out("tables", rows(md.getTables(null, "public", "%", new String[] {"TABLE", "VIEW"}), "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE"));
            out("columns", rows(md.getColumns(null, "public", "costs", "%"), "COLUMN_NAME", "TYPE_NAME"));
            out("primary_keys", rows(md.getPrimaryKeys(null, "public", "costs"), "COLUMN_NAME"));
            out("imported_keys", rows(md.getImportedKeys(null, "public", "costs"), "FKCOLUMN_NAME"));
            out("type_info", rows(md.getTypeInfo(), "TYPE_NAME").contains("numeric"));

            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT sum(billed_cost), count(*), min(charge_day), min(charge_period_start) FROM costs WHERE provider_name = ?")) {
                for (int i = 0; i < 7; i++) {
                    ps.setString(1, "OpenAI");
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        out("run" + i, rs.getBigDecimal(1).toPlainString() + "," + rs.getLong(2) + "," + rs.getDate(3) + "," + rs.getTimestamp(4).toInstant());
                    }
                }
            }
            try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM costs WHERE charge_day >= ? AND billed_cost > ?")) {
                ps.setDate(1, Date.valueOf("2026-01-20"));
                ps.setBigDecimal(2, new java.math.BigDecimal("0.5"));
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    out("since", rs.getLong(1));
                }
            }
            try (Statement s = c.createStatement()) {
                s.executeQuery("SELECT * FROM '/etc/passwd'");
                out("escape", "accepted");
            } catch (SQLException e) {
                out("escape", e.getSQLState() + " " + e.getMessage().replace('\n', ' '));
            }
        }
    }
}
