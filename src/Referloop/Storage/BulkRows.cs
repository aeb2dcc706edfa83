using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Referloop.Storage;

/// <summary>
/// One statement over many rows, for the delivery hot path, where EF Core's change tracking costs more than the
/// write itself. On SQLite the statement is prepared once and stepped once per row (parsed once; SQLite has no round
/// trips to save); on PostgreSQL each column travels as one array and the statement reads the rows with
/// <c>unnest</c> (one round trip). Runs on the context's connection, inside its current transaction.
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
    /// <c>ON CONFLICT DO NOTHING RETURNING "Id"</c>) follows the statement, and rows it returns go to <paramref name="read"/>.
    /// </summary>
    public Task InsertAsync(string table, CancellationToken ct, string? suffix = null, Action<DbDataReader>? read = null)
    {
        var names = string.Join(", ", _columns.Select(c => $"\"{c.Name}\""));
        return ExecuteAsync(
            $"INSERT INTO {table} ({names}) VALUES ({string.Join(", ", _columns.Select(c => "$" + c.Name))}) {suffix}",
            $"INSERT INTO {table} ({names}) SELECT * FROM unnest({Arrays}) {suffix}",
            read, ct);
    }

    /// <summary>
    /// Runs <paramref name="sqlite"/> once per row, with the row's values as <c>$Name</c> parameters, or
    /// <paramref name="postgres"/> once, with every column as an array parameter <c>@Name</c> (unnest them in the
    /// order the columns were added, as <see cref="Unnest"/> does). Rows a statement returns go to <paramref name="read"/>.
    /// </summary>
    public async Task ExecuteAsync(string sqlite, string postgres, Action<DbDataReader>? read, CancellationToken ct)
    {
        if (count == 0)
        {
            return;
        }
        var connection = db.Database.GetDbConnection();
        await using var command = connection.CreateCommand();
        command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
        command.CommandText = _sqlite ? sqlite : postgres;
        var parameters = _columns.Select(column =>
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = (_sqlite ? "$" : "@") + column.Name;
            command.Parameters.Add(parameter);
            return parameter;
        }).ToList();
        if (!_sqlite)
        {
            for (var c = 0; c < _columns.Count; c++)
            {
                parameters[c].Value = ArrayOf(_columns[c]);
            }
            await RunAsync(command, read, ct);
            return;
        }
        for (var row = 0; row < count; row++)
        {
            for (var c = 0; c < _columns.Count; c++)
            {
                parameters[c].Value = _columns[c].Value(row) ?? DBNull.Value;
            }
            await RunAsync(command, read, ct);
        }
    }

    /// <summary>The PostgreSQL rows of the columns, named as added: <c>unnest(@A::text[], …) AS alias("A", …)</c>.</summary>
    public string Unnest(string alias) => $"unnest({Arrays}) AS {alias}({string.Join(", ", _columns.Select(c => $"\"{c.Name}\""))})";

    private string Arrays => string.Join(", ", _columns.Select(c => $"@{c.Name}::{c.PostgresType}[]"));

    private static async Task RunAsync(DbCommand command, Action<DbDataReader>? read, CancellationToken ct)
    {
        if (read is null)
        {
            await command.ExecuteNonQueryAsync(ct);
            return;
        }
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            read(reader);
        }
    }

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
