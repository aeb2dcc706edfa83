using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Referloop.Storage;

/// <summary>SQLite keeps instants as UTC ticks (sortable integers); PostgreSQL as timestamptz.</summary>
internal sealed class UtcTicksConverter() : ValueConverter<DateTimeOffset, long>(
    value => value.UtcTicks,
    ticks => new DateTimeOffset(ticks, TimeSpan.Zero))
{
    /// <summary>An instant as a parameter of hand-written SQL, stored as EF stores it on <paramref name="db"/>'s provider.</summary>
    public static object SqlValue(ReferloopDb db, DateTimeOffset value) =>
        db.OnSqlite ? value.UtcTicks : value.ToUniversalTime();
}
