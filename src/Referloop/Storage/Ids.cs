using System.Security.Cryptography;

namespace Referloop.Storage;

/// <summary>
/// Opaque, prefixed identifiers (<c>cmp_…</c>, <c>par_…</c>): 32 lowercase hex digits, like a GUID, that sort by
/// creation as plain strings, which is what cursor pagination and every history ordered by id rely on. A version-7
/// GUID orders only by millisecond and is random within one, so two rows written in the same unit of work could
/// come back in either order; here the millisecond is followed by a counter that keeps every id of this process
/// after the one before it, then 64 random bits.
/// </summary>
public static class Ids
{
    private static readonly Lock Gate = new();
    private static long _lastMilliseconds;
    private static long _sequence;

    public static string New(string prefix)
    {
        long milliseconds;
        long sequence;
        lock (Gate)
        {
            milliseconds = Math.Max(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), _lastMilliseconds);
            if (milliseconds == _lastMilliseconds)
            {
                if (++_sequence > 0xFFFF)
                {
                    // 65,536 ids in one millisecond: borrow the next one rather than wrap.
                    milliseconds = ++_lastMilliseconds;
                    _sequence = 0;
                }
            }
            else
            {
                _lastMilliseconds = milliseconds;
                _sequence = 0;
            }
            sequence = _sequence;
        }
        Span<byte> random = stackalloc byte[8];
        RandomNumberGenerator.Fill(random);
        return $"{prefix}_{milliseconds:x12}{sequence:x4}{BitConverter.ToUInt64(random):x16}";
    }
}
