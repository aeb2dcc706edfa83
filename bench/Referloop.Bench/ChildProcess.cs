using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Referloop.Bench;

/// <summary>
/// A process the bench started, its output kept in a log file. Every one is registered so that
/// <see cref="KillAll"/> can end them whatever way the run stops (failure, Ctrl+C, SIGTERM).
/// </summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private static readonly ConcurrentDictionary<int, ChildProcess> Running = new();

    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Lock _logLock = new();
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Name { get; }
    public string LogPath { get; }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;

    private ChildProcess(string name, Process process, string logPath)
    {
        Name = name;
        _process = process;
        LogPath = logPath;
        _log = new StreamWriter(logPath, append: false) { AutoFlush = true };
    }

    public static ChildProcess Start(string name, string file, IEnumerable<string> arguments, string workingDirectory,
        IReadOnlyDictionary<string, string?> environment, string logPath)
    {
        var info = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var child = new ChildProcess(name, process, logPath);
        process.OutputDataReceived += (_, e) => child.Write(e.Data, child._stdoutClosed);
        process.ErrorDataReceived += (_, e) => child.Write(e.Data, child._stderrClosed);
        try
        {
            process.Start();
        }
        catch (Exception e)
        {
            throw new BenchException($"could not start {name} ({file}): {e.Message}");
        }
        Running[process.Id] = child;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    private void Write(string? line, TaskCompletionSource closed)
    {
        if (line is null)
        {
            closed.TrySetResult();
            return;
        }
        lock (_logLock)
        {
            _log.WriteLine(line);
        }
    }

    /// <summary>Waits for the process to end on its own; past the timeout it is killed and this throws.</summary>
    public async Task<int> WaitAsync(TimeSpan timeout, CancellationToken ct = default)
    {
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timer.CancelAfter(timeout);
        try
        {
            await _process.WaitForExitAsync(timer.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            if (ct.IsCancellationRequested)
            {
                throw;
            }
            throw new BenchException($"{Name} did not finish within {timeout.TotalSeconds:0} s and was killed");
        }
        await Task.WhenAny(Task.WhenAll(_stdoutClosed.Task, _stderrClosed.Task), Task.Delay(2000, CancellationToken.None));
        Running.TryRemove(_process.Id, out _);
        return _process.ExitCode;
    }

    /// <summary>Asks the process to stop (SIGTERM, so a server shuts down cleanly) and kills it after the grace period.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (!_process.HasExited)
        {
            _ = SendSignal(_process.Id, SigTerm);
            using var timer = new CancellationTokenSource(grace);
            try
            {
                await _process.WaitForExitAsync(timer.Token);
            }
            catch (OperationCanceledException)
            {
                Kill();
            }
        }
        Running.TryRemove(_process.Id, out _);
    }

    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // Already gone.
        }
        Running.TryRemove(_process.Id, out _);
    }

    public string Output()
    {
        lock (_logLock)
        {
            _log.Flush();
        }
        using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    public string Tail(int lines = 30)
    {
        var all = Output().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return string.Join('\n', all.TakeLast(lines));
    }

    public static void KillAll()
    {
        foreach (var child in Running.Values)
        {
            child.Kill();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(10));
        lock (_logLock)
        {
            _log.Dispose();
        }
        _process.Dispose();
    }

    private const int SigTerm = 15;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);
}

/// <summary>Memory and CPU of a running process, straight from /proc.</summary>
internal static class ProcStats
{
    private static readonly long TicksPerSecond = ClockTicks();

    /// <summary>Resident set size now and its peak (VmRSS, VmHWM) in MiB; null when the process is gone.</summary>
    public static (double Rss, double Peak)? Memory(int pid)
    {
        try
        {
            double rss = 0, peak = 0;
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    rss = Kilobytes(line) / 1024.0;
                }
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    peak = Kilobytes(line) / 1024.0;
                }
            }
            return (rss, peak);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>User plus system CPU seconds the process has used so far (utime + stime of /proc/pid/stat).</summary>
    public static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // The command name may hold spaces; the fields after it start at the last ')'.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // Fields 14 and 15 of stat(5); fields[0] here is field 3 (state).
        var ticks = long.Parse(fields[11]) + long.Parse(fields[12]);
        return ticks / (double)TicksPerSecond;
    }

    private static long Kilobytes(string line) =>
        long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

    private static long ClockTicks()
    {
        const int scClkTck = 2;
        var ticks = SystemConf(scClkTck);
        return ticks > 0 ? ticks : 100;
    }

    [DllImport("libc", EntryPoint = "sysconf")]
    private static extern long SystemConf(int name);
}

/// <summary>A failure of the run with a message meant for the person running it.</summary>
internal class BenchException(string message) : Exception(message);

/// <summary>A phase that cannot run on this build (a feature it measures is missing); the run goes on without it.</summary>
internal sealed class SkipException(string message) : BenchException(message);
