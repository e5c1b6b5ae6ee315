"""The SGLang container's first process: runs `python3 -m sglang.launch_server ARGS...` with the
API key and the hub token masked in everything it prints.

SGLang logs `server_args=ServerArgs(..., api_key='...')` at startup (0.5.3.post3,
sglang/srt/entrypoints/engine.py; docs/upstream.md), which would put the key in the journal and
in `docker logs`. So the server's stdout and stderr come through pipes here, and each line is
written on with the secrets replaced.

The key reaches SGLang only as `--api-key`, which the server process adds to its own sys.argv from
SGLANG_API_KEY: it is on no command line (/proc/<pid>/cmdline is world-readable). Signals are
passed on (this is PID 1: `docker stop` sends SIGTERM here), and the server's exit status is this
process's.
"""
import os
import signal
import subprocess
import sys
import threading

MASK = b"<masked>"
# Run in the server process: the key from the environment onto sys.argv, then launch_server.
BOOT = ("import os, runpy, sys; key = os.environ.pop('SGLANG_API_KEY', ''); "
        "sys.argv += ['--api-key', key] if key else []; "
        "runpy.run_module('sglang.launch_server', run_name='__main__', alter_sys=True)")


def secrets(env):
    """Each secret as it may be printed: raw, and as Python's repr escapes it."""
    found = set()
    for name in ("SGLANG_API_KEY", "HF_TOKEN"):
        value = env.get(name, "")
        if value:
            found.add(value.encode())
            found.add(repr(value)[1:-1].encode("ascii", "backslashreplace"))
    return sorted(found, key=len, reverse=True)  # a longer secret first, should one hold another


def mask(line, hidden):
    for secret in hidden:
        line = line.replace(secret, MASK)
    return line


def pump(source, sink, hidden):
    for line in iter(source.readline, b""):
        sink.write(mask(line, hidden))
        sink.flush()
    source.close()


def main(argv):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    hidden = secrets(env)
    os.environ.pop("SGLANG_API_KEY", None)
    server = subprocess.Popen([sys.executable, "-c", BOOT, *argv], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, lambda signum, _frame: server.send_signal(signum))
    pumps = [threading.Thread(target=pump, args=(pipe, out.buffer, hidden))
             for pipe, out in ((server.stdout, sys.stdout), (server.stderr, sys.stderr))]
    for thread in pumps:
        thread.start()
    code = server.wait()
    for thread in pumps:
        thread.join()
    return 128 - code if code < 0 else code  # killed by a signal: as a shell reports it


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
