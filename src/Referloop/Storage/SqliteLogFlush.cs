namespace Referloop.Storage;

/// <summary>
/// Makes SQLite's commits durable after the writer's turn instead of inside it. The connections commit with
/// <c>synchronous=NORMAL</c>: in WAL mode the commit is written to the log (and seen by readers) without waiting for
/// the disk; this class then flushes the log file (<c>fsync</c>) before the committer goes on. A flush covers every
/// commit written before it started, so commits that finish while one runs share the next, and the next writer works
/// while the disk does. The log's frames carry a running checksum, so after a crash SQLite replays them only up to the
/// first one that did not reach the disk: a commit is never kept without the ones before it.
/// </summary>
internal sealed class SqliteLogFlush(string? logPath)
{
    private readonly Lock _gate = new();

    // Waiting for a flush that has not started yet; and whether the flushing loop runs.
    private TaskCompletionSource? _next;
    private bool _flushing;
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
            _next ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var flushed = _next.Task;
            if (!_flushing)
            {
                _flushing = true;
                ThreadPool.UnsafeQueueUserWorkItem(_ => FlushWaiting(), null);
            }
            return flushed;
        }
    }

    private void FlushWaiting()
    {
        while (true)
        {
            TaskCompletionSource waiting;
            lock (_gate)
            {
                if (_next is null)
                {
                    _flushing = false;
                    return;
                }
                waiting = _next;
                _next = null;
            }
            try
            {
                Flush();
                waiting.SetResult();
            }
            catch (Exception e)
            {
                waiting.SetException(e);
            }
        }
    }

    /// <summary>One flush on the calling thread, for a commit made without <c>await</c>.</summary>
    public void Flush()
    {
        if (logPath is null)
        {
            return;
        }
        try
        {
            // Opened by name each time: SQLite removes the log when its last connection closes, and a new one may
            // follow. fsync on any descriptor of the file writes all of its cached pages.
            using var log = new FileStream(logPath, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
            log.Flush(flushToDisk: true);
        }
        catch (FileNotFoundException)
        {
            // No log: its last connection closed, which copied it into the database file and flushed that first.
        }
        Interlocked.Increment(ref _flushes);
    }
}
