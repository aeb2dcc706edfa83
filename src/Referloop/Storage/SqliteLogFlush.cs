namespace Referloop.Storage;

/// <summary>
/// Makes SQLite's commits durable after the writer's turn instead of inside it. The connections commit with
/// <c>synchronous=NORMAL</c>: in WAL mode the commit is written to the log (and seen by readers) without waiting for
/// the disk; this class then flushes the log file (<c>fsync</c>) before the committer goes on. A flush covers every
/// commit written before it started, so commits that finish while one runs share the next, and the next writer works
/// while the disk does. The log's frames carry a running checksum, so after a crash SQLite replays them only up to the
/// first one that did not reach the disk: a commit is never kept without the ones before it.
/// <para>
/// Flushes run on a thread of their own (started on demand, ended after a while without work), so a commit that waits
/// without <c>await</c> never waits for a pool thread. A failed flush fails every flush after it: once a flush has
/// failed, the kernel may have dropped the pages it could not write, and a later flush that succeeds would not mean
/// that they are on disk.
/// </para>
/// </summary>
internal sealed class SqliteLogFlush(string? logPath)
{
    private static readonly TimeSpan IdleEnd = TimeSpan.FromSeconds(30);

    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _wake = new(0);

    // Waiting for a flush that has not started yet; the flushing thread, while there is one; the first failure.
    private TaskCompletionSource? _next;
    private Thread? _thread;
    private Exception? _failure;
    private long _flushes;

    /// <summary>The log file flushed (<c>{database}-wal</c>); null for an in-memory database, which has nothing to flush.</summary>
    public string? LogPath => logPath;

    /// <summary>Flushes done since the start.</summary>
    public long Flushes => Interlocked.Read(ref _flushes);

    /// <summary>Completes once everything committed before the call is on disk; callers meanwhile share one flush.</summary>
    public Task FlushAsync()
    {
        if (logPath is null)
        {
            return Task.CompletedTask;
        }
        lock (_gate)
        {
            if (_next is null)
            {
                _next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _wake.Release();
            }
            if (_thread is null)
            {
                _thread = new Thread(FlushWaiting) { IsBackground = true, Name = "SQLite log flush" };
                _thread.Start();
            }
            return _next.Task;
        }
    }

    /// <summary>The same, for a commit that waits without <c>await</c>.</summary>
    public void Flush() => FlushAsync().GetAwaiter().GetResult();

    private void FlushWaiting()
    {
        while (true)
        {
            var woken = _wake.Wait(IdleEnd);
            TaskCompletionSource waiting;
            lock (_gate)
            {
                if (_next is null)
                {
                    if (woken)
                    {
                        continue;
                    }
                    _thread = null;
                    return;
                }
                waiting = _next;
                _next = null;
            }
            try
            {
                FlushNow();
                waiting.SetResult();
            }
            catch (Exception e)
            {
                waiting.SetException(e);
            }
        }
    }

    private void FlushNow()
    {
        if (_failure is not null)
        {
            throw new IOException($"Flushing the SQLite log {logPath} failed before; nothing written since is known to be on disk. Restart the server.", _failure);
        }
        try
        {
            // Opened by name each time: SQLite removes the log when its last connection closes, and a new one may
            // follow. fsync on any descriptor of the file writes all of its cached pages.
            using var log = new FileStream(logPath!, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
            log.Flush(flushToDisk: true);
        }
        catch (FileNotFoundException)
        {
            // No log: its last connection closed, which copied it into the database file and flushed that first.
        }
        catch (Exception e)
        {
            _failure = e;
            throw;
        }
        Interlocked.Increment(ref _flushes);
    }
}
