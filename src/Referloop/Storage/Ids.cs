using System.Runtime.InteropServices;
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
        return $"{prefix}_{milliseconds:x12}{sequence:x4}{NextRandom():x16}";
    }

    // Random bits drawn from the system's generator 64 ids at a time: one call per id was a few percent of the
    // server's CPU under delivery load, where every attempt logged takes an id.
    [ThreadStatic] private static ulong[]? _random;
    [ThreadStatic] private static int _randomNext;

    private static ulong NextRandom()
    {
        var random = _random ??= new ulong[64];
        if (_randomNext == 0)
        {
            RandomNumberGenerator.Fill(MemoryMarshal.AsBytes(random.AsSpan()));
        }
        var value = random[_randomNext];
        _randomNext = (_randomNext + 1) % random.Length;
        return value;
    }
}
