using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using SQLitePCL;

namespace Referloop.Storage;

/// <summary>
/// One statement over many rows, for the hot paths, where EF Core's change tracking costs more than the write itself.
/// On SQLite the statement is prepared once and stepped once per row (parsed once; SQLite has no round trips to save),
/// its values bound by position: Microsoft.Data.Sqlite would look every value of every row up by its parameter's name,
/// and SQLite searches the names one by one. On PostgreSQL each column travels as one array and the statement reads
/// the rows with <c>unnest</c> (one round trip). Runs on the context's open connection, inside its current transaction.
/// </summary>
internal sealed class BulkRows(ReferloopDb db, int count)
{
    private readonly List<Column> _columns = [];
    private readonly bool _sqlite = db.OnSqlite;

    private sealed record Column(string Name, string PostgresType, Func<int, object?> Value, Type? ElementType = null);

    /// <summary>
    /// Every mapped column of <typeparamref name="T"/>, valued as EF Core writes it (its value converters, its column
    /// types): new rows of an entity written without the change tracker, the same as a save would write them.
    /// </summary>
    public static BulkRows For<T>(ReferloopDb db, IReadOnlyList<T> rows) where T : class
    {
        var bulk = new BulkRows(db, rows.Count);
        var entity = db.Model.FindEntityType(typeof(T))
            ?? throw new InvalidOperationException($"{typeof(T).Name} is not mapped");
        foreach (var property in entity.GetProperties())
        {
            var converter = property.GetTypeMapping().Converter;
            var provider = converter?.ProviderClrType ?? property.ClrType;
            var getter = property.GetGetter();
            bulk._columns.Add(new Column(property.GetColumnName(), property.GetColumnType(), i =>
                getter.GetClrValue(rows[i]) is { } value ? converter?.ConvertToProvider(value) ?? value : null,
                Nullable.GetUnderlyingType(provider) is null && provider.IsValueType ? typeof(Nullable<>).MakeGenericType(provider) : provider));
        }
        return bulk;
    }

    public BulkRows Text(string name, Func<int, string?> value) => Add(name, "text", i => value(i));

    public BulkRows Int(string name, Func<int, int?> value) => Add(name, "integer", i => value(i));

    public BulkRows Long(string name, Func<int, long> value) => Add(name, "bigint", i => value(i));

    public BulkRows Bool(string name, Func<int, bool> value) => Add(name, "boolean", i => value(i));

    /// <summary>An instant, stored as EF stores it (see <see cref="UtcTicksConverter.SqlValue"/>).</summary>
    public BulkRows Instant(string name, Func<int, DateTimeOffset?> value) =>
        Add(name, "timestamptz", i => value(i) is { } at ? UtcTicksConverter.SqlValue(db, at) : null);

    private BulkRows Add(string name, string postgresType, Func<int, object?> value)
    {
        _columns.Add(new Column(name, postgresType, value));
        return this;
    }

    /// <summary>
    /// Inserts the rows into <paramref name="table"/>, one column per value added; <paramref name="suffix"/> (such as
    /// <c>ON CONFLICT DO NOTHING</c>) follows the statement, and a row goes in only where <paramref name="where"/> holds
    /// (see <see cref="Insert"/>). Returns how many rows it inserted.
    /// </summary>
    public Task<int> InsertAsync(string table, CancellationToken ct, string? suffix = null, Func<Func<string, string>, string>? where = null)
    {
        var (sqlite, postgres) = Insert(table, suffix, where);
        return ExecuteAsync(sqlite, postgres, ct);
    }

    /// <summary>
    /// The statements of <see cref="InsertAsync"/>, for <see cref="StatementBatch"/>. With <paramref name="where"/>, a
    /// row is inserted only where that condition holds; it is given how to name a column of the row in the statement
    /// (<c>$OrderId</c> on SQLite, <c>candidate."OrderId"</c> on PostgreSQL).
    /// </summary>
    internal (string Sqlite, string Postgres) Insert(string table, string? suffix = null, Func<Func<string, string>, string>? where = null)
    {
        var names = string.Join(", ", _columns.Select(c => $"\"{c.Name}\""));
        var values = string.Join(", ", _columns.Select(c => "$" + c.Name));
        return where is null
            ? ($"INSERT INTO {table} ({names}) VALUES ({values}) {suffix}",
                $"INSERT INTO {table} ({names}) SELECT * FROM unnest({Arrays}) {suffix}")
            : ($"INSERT INTO {table} ({names}) SELECT {values} WHERE {where(name => "$" + name)} {suffix}",
                $"INSERT INTO {table} ({names}) SELECT * FROM {Unnest("candidate")} WHERE {where(name => $"candidate.\"{name}\"")} {suffix}");
    }

    /// <summary>How many rows the statements run for.</summary>
    internal int Count => count;

    /// <summary>
    /// Runs <paramref name="sqlite"/> once per row, with the row's values as <c>$Name</c> parameters, or
    /// <paramref name="postgres"/> once, with every column as an array parameter <c>@Name</c> (unnest them in the
    /// order the columns were added, as <see cref="Unnest"/> does). Returns how many rows the statements inserted,
    /// updated or deleted.
    /// </summary>
    public async Task<int> ExecuteAsync(string sqlite, string postgres, CancellationToken ct)
    {
        if (count == 0)
        {
            return 0;
        }
        if (_sqlite)
        {
            return RunOnSqlite(sqlite);
        }
        var connection = db.Database.GetDbConnection();
        await using var command = connection.CreateCommand();
        command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
        command.CommandText = postgres;
        BindArrays(command.Parameters, command.CreateParameter);
        return await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The rows' values as PostgreSQL parameters: one array per column, named <c>@Name</c>.</summary>
    internal void BindArrays(DbParameterCollection parameters, Func<DbParameter> create)
    {
        foreach (var column in _columns)
        {
            var parameter = create();
            parameter.ParameterName = "@" + column.Name;
            parameter.Value = ArrayOf(column);
            parameters.Add(parameter);
        }
    }

    /// <summary>Runs <paramref name="sql"/> once per row; how many rows it inserted, updated or deleted.</summary>
    internal int RunOnSqlite(string sql)
    {
        var handle = ((SqliteConnection)db.Database.GetDbConnection()).Handle
            ?? throw new InvalidOperationException("BulkRows needs the context's connection open");
        if (db.Database.CurrentTransaction is null)
        {
            // SqliteWriteQueue sees these statements only through their transaction: outside one, they would write past it.
            throw new InvalidOperationException("BulkRows writes on SQLite only inside a transaction (see SqliteWriteQueue)");
        }
        var rc = raw.sqlite3_prepare_v2(handle, sql, out var statement);
        Check(rc, handle);
        using (statement)
        {
            // Each column's position in the statement, looked up once; a column the statement does not name is not bound.
            var positions = _columns.Select(c => raw.sqlite3_bind_parameter_index(statement, "$" + c.Name)).ToArray();
            var changed = 0;
            for (var row = 0; row < count; row++)
            {
                for (var c = 0; c < _columns.Count; c++)
                {
                    if (positions[c] > 0)
                    {
                        Check(Bind(statement, positions[c], _columns[c].Value(row)), handle);
                    }
                }
                // Rows a statement returns (RETURNING) are stepped over.
                do
                {
                    rc = raw.sqlite3_step(statement);
                }
                while (rc == raw.SQLITE_ROW);
                raw.sqlite3_reset(statement);
                if (rc != raw.SQLITE_DONE)
                {
                    SqliteException.ThrowExceptionForRC(rc, handle);
                }
                changed += raw.sqlite3_changes(handle);
            }
            return changed;
        }
    }

    private static void Check(int rc, sqlite3 handle)
    {
        if (rc != raw.SQLITE_OK)
        {
            SqliteException.ThrowExceptionForRC(rc, handle);
        }
    }

    /// <summary>A value as Microsoft.Data.Sqlite would bind it, for the types EF Core hands it for these tables.</summary>
    private static int Bind(sqlite3_stmt statement, int position, object? value) => value switch
    {
        null or DBNull => raw.sqlite3_bind_null(statement, position),
        string text => raw.sqlite3_bind_text(statement, position, text),
        long number => raw.sqlite3_bind_int64(statement, position, number),
        int number => raw.sqlite3_bind_int64(statement, position, number),
        bool flag => raw.sqlite3_bind_int64(statement, position, flag ? 1 : 0),
        double number => raw.sqlite3_bind_double(statement, position, number),
        decimal number => raw.sqlite3_bind_text(statement, position,
            number.ToString("0.0###########################", CultureInfo.InvariantCulture)),
        byte[] bytes => raw.sqlite3_bind_blob(statement, position, bytes),
        _ => throw new NotSupportedException($"BulkRows cannot bind a {value.GetType().Name} on SQLite; convert it first"),
    };

    /// <summary>The PostgreSQL rows of the columns, named as added: <c>unnest(@A::text[], …) AS alias("A", …)</c>.</summary>
    public string Unnest(string alias) => $"unnest({Arrays}) AS {alias}({string.Join(", ", _columns.Select(c => $"\"{c.Name}\""))})";

    private string Arrays => string.Join(", ", _columns.Select(c => $"@{c.Name}::{c.PostgresType}[]"));

    private Array ArrayOf(Column column) => column.ElementType is { } type ? TypedValues(column, type) : column.PostgresType switch
    {
        "text" => Values<string?>(column),
        "integer" => Values<int?>(column),
        "bigint" => Values<long>(column),
        "boolean" => Values<bool>(column),
        "timestamptz" => Values<DateTimeOffset?>(column),
        _ => throw new InvalidOperationException($"no array type for {column.PostgresType}"),
    };

    private Array TypedValues(Column column, Type type)
    {
        var values = Array.CreateInstance(type, count);
        for (var row = 0; row < count; row++)
        {
            values.SetValue(column.Value(row), row);
        }
        return values;
    }

    private T[] Values<T>(Column column)
    {
        var values = new T[count];
        for (var row = 0; row < count; row++)
        {
            values[row] = (T)column.Value(row)!;
        }
        return values;
    }
}
