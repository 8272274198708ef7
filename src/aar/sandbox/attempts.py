"""The escape attempts of ``aar sandbox check``: each a small Python program run inside a sandbox.

An attempt *succeeds* (escapes) when its program prints ``ESCAPED`` followed by the secret it reached,
or when the host sees its effect (a file written, a signal received, a process left behind). The
programs are formatted with the check fixture's paths, ports and process ids (``{name}`` fields).
``isolation`` attempts are what namespaces and masks must stop: under ``local`` they must succeed,
which proves that each check can fail. ``limit`` attempts are stopped by the per-exec limits under
every backend (``local`` results are informational: e.g. RLIMIT_NPROC does not bind root).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["isolation", "limit"]


@dataclass(frozen=True)
class Attempt:
    """One escape attempt: a program, what it tries, and how its success shows."""

    name: str
    what: str
    program: str
    kind: Kind = "isolation"
    timeout: float = 30.0
    host_check: str | None = None  # name of a host-side verification in check.py, else "ESCAPED" in stdout
    secret: bool = True  # success also needs one of the fixture's planted secrets in stdout
    limits: tuple[tuple[str, int], ...] = ()  # overrides of the check's limits for this attempt
    env: tuple[tuple[str, str], ...] = ()


def _read(path_expr: str) -> str:
    return f"print('ESCAPED', open({path_expr}, errors='replace').read(4096))"


ATTEMPTS: tuple[Attempt, ...] = (
    Attempt("label-file", "read a label file by its path", _read("{label_file!r}")),
    Attempt("label-proc-root", "read a label file through /proc/1/root (or /proc/<host pid>/root, /proc/self/root)",
            "for pid in ('1', '{decoy_pid}', 'self'):\n    try:\n"
            "        print('ESCAPED', open(f'/proc/{{pid}}/root' + {label_file!r}).read())\n    except OSError as e:\n"
            "        print(e)"),
    Attempt("label-host-cwd", "read a label file through /proc/<host pid>/cwd",
            _read("'/proc/{decoy_pid}/cwd/labels.jsonl'")),
    Attempt("label-host-fd", "read a label file through /proc/<host pid>/fd", _read("'/proc/{decoy_pid}/fd/0'")),
    Attempt("symlink-planted", "follow a symlink to a label file planted in the workspace beforehand",
            _read("'planted-link'")),
    Attempt("hardlink-planted", "read a label file through a hard link the host left in the workspace",
            _read("'planted-hardlink'")),
    Attempt("symlink-inside", "create a symlink to a label file from inside and read it",
            "import os\nos.symlink({label_file!r}, 'my-link')\n" + _read("'my-link'")),
    Attempt("hardlink-inside", "create a hard link to a label file from inside and read it",
            "import os\nos.link({label_file!r}, 'my-hardlink')\n" + _read("'my-hardlink'")),
    Attempt("nested-userns-unmask", "unshare a user+mount namespace, unmount the mask, read a label file",
            "import subprocess\nr = subprocess.run(['unshare', '-rm', 'sh', '-c', "
            "'umount -l {aar_home} 2>/dev/null; umount -l {label_dir} 2>/dev/null; cat {label_file}'], "
            "capture_output=True, text=True)\nprint('ESCAPED', r.stdout) if r.stdout else print(r.stderr)"),
    Attempt("other-worker-read", "read another worker's workspace", _read("{other_file!r}")),
    Attempt("other-worker-write", "write into another worker's workspace",
            "open({other_file!r}, 'a').write('tampered')", host_check="other_tampered"),
    Attempt("label-source", "look a test label up in a declared label source (hidden path)",
            _read("{label_source!r} + '/data.noun'")),
    Attempt("wordnet", "read WordNet, the built-in testbeds' label source (/usr/share/wordnet)",
            "import os\nfor d in ('/usr/share/wordnet', '/usr/local/share/wordnet'):\n"
            "    p = os.path.join(d, 'data.noun')\n"
            "    if os.path.exists(p):\n        print('ESCAPED', open(p).read(200)[:80]); break\n"
            "else:\n    print('no WordNet visible')", host_check="wordnet_installed", secret=False),
    Attempt("rebuild-testbed", "rebuild a testbed's labels with the installed aar (WordNet lookup)",
            "from aar.w2s.testbeds.wordnet import wordnet_dir\n"
            "print('ESCAPED', open(wordnet_dir() / 'data.noun').read())",
            env=(("WNSEARCHDIR", "{label_source}"),)),
    Attempt("sealed-reference", "read the sealed reference method's code (installed package, git history, tests)",
            "import aar, pathlib\nroot = pathlib.Path(aar.__file__).resolve().parent\n"
            "for p in (root / 'labels' / 'sealed' / '__init__.py', root.parent.parent / '.git' / 'HEAD',\n"
            "          root.parent.parent / 'tests' / 'labels' / 'test_room.py'):\n"
            "    try:\n        print('ESCAPED', p, p.read_text()[:80]); break\n"
            "    except OSError as e:\n        print(e)", secret=False),
    Attempt("env-api-key", "read an API key from the environment",
            "import os\nprint('ESCAPED', {{k: v for k, v in os.environ.items() if 'KEY' in k or 'TOKEN' in k}})"),
    Attempt("proc-environ", "read an API key from another process's /proc/<pid>/environ",
            "import glob\nfor p in glob.glob('/proc/[0-9]*/environ'):\n"
            "    try:\n        e = open(p, 'rb').read()\n    except OSError:\n        continue\n"
            "    if b'ANTHROPIC_API_KEY' in e:\n        print('ESCAPED', p, e[:2000])"),
    Attempt("admin-token-file", "read an admin token file in AAR_HOME", _read("{admin_token!r}")),
    Attempt("service-db", "read the services' database", _read("{hub_db!r}")),
    Attempt("snapshot-store", "read the snapshot store", _read("{snapshot!r}")),
    Attempt("host-home", "read credentials in the host's home folder",
            "import os\nfor n in sorted(os.listdir({host_home!r})):\n"
            "    p = os.path.join({host_home!r}, n)\n"
            "    if os.path.isfile(p) and os.access(p, os.R_OK):\n        print('ESCAPED', p); break", secret=False),
    Attempt("tcp-loopback", "connect to a TCP port the host listens on (the services)",
            "import socket\ns = socket.create_connection(('127.0.0.1', {tcp_port}), timeout=3)\n"
            "print('ESCAPED', s.recv(100))"),
    Attempt("outside-network", "reach any outside address (route to a public IP)",
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.connect(('192.0.2.1', 53))\n"
            "print('ESCAPED', s.getsockname(), socket.if_nameindex())", secret=False),
    Attempt("host-unix-socket", "connect to a host unix socket in /tmp",
            "import socket\ns = socket.socket(socket.AF_UNIX)\ns.settimeout(3)\ns.connect({unix_socket!r})\n"
            "print('ESCAPED', s.recv(100))"),
    Attempt("host-processes", "see a host process in /proc",
            "import glob, os\nfor p in glob.glob('/proc/[0-9]*/cmdline'):\n"
            "    try:\n        c = open(p, 'rb').read()\n    except OSError:\n        continue\n"
            "    if {decoy_mark_reversed!r}[::-1].encode() in c and p != f'/proc/{{os.getpid()}}/cmdline':\n"
            "        print('ESCAPED', p)", secret=False),
    Attempt("signal-host", "send a signal to a host process",
            "import os, signal\nos.kill({decoy_pid}, signal.SIGUSR1)", host_check="decoy_signalled"),
    Attempt("ptrace-host", "ptrace-attach to a host process",
            "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "if libc.ptrace(16, {decoy_pid}, 0, 0) == 0:\n"
            "    os.waitpid({decoy_pid}, 0)\n    libc.ptrace(17, {decoy_pid}, 0, 0)\n    print('ESCAPED attached')\n"
            "else:\n    print('errno', ctypes.get_errno())", secret=False),
    Attempt("write-outside", "write a file outside the workspace",
            "import os\nfor d in ({outside_dir!r}, {aar_home!r}, '/var/tmp'):\n"
            "    try:\n        open(os.path.join(d, {outside_name!r}), 'w').write('x')\n    except OSError as e:\n"
            "        print(d, e)", host_check="outside_written"),
    Attempt("leave-process", "leave a process running after the exec ends",
            "import subprocess\nsubprocess.Popen(['setsid', 'sleep', {linger_s!r}], start_new_session=True,"
            " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)", host_check="process_left"),
    Attempt("memory", "exhaust memory (allocate twice the memory limit)",
            "b = bytearray({memory_hog})\nprint('ESCAPED', len(b))", kind="limit", secret=False),
    Attempt("fork-bomb", "exhaust processes (fork 200 sleeping children; bounded)",
            "import os, time\nn = 0\nfor _ in range(200):\n    try:\n        pid = os.fork()\n"
            "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(3)\n        os._exit(0)\n"
            "    n += 1\nprint('ESCAPED' if n >= 200 else 'stopped at', n)", kind="limit", secret=False),
    Attempt("disk", "exhaust disk (write 40x the workspace quota)",
            "import os\nchunk = os.urandom(1 << 20)\nfor i in range({disk_files}):\n"
            "    with open(f'fill-{{i}}', 'wb') as f:\n        for _ in range(4):\n            f.write(chunk)\n"
            "print('ESCAPED wrote all')", kind="limit", host_check="disk_held"),
    Attempt("disk-sparse", "pass the quota with sparse files (each under the file cap, no blocks used)",
            "import os, time\nfor i in range(8):\n    with open(f'fill-sparse-{{i}}', 'wb') as f:\n"
            "        f.truncate({disk_bytes} * 9 // 10)\n    time.sleep(0.05)\nprint('wrote all')",
            kind="limit", host_check="disk_held"),
    Attempt("tmp", "exhaust memory through the private /tmp (write 4x its size)",
            "import os\nchunk = b'x' * (1 << 20)\nfor i in range({tmp_files}):\n"
            "    with open(f'/tmp/{tmp_prefix}-{{i}}', 'wb') as f:\n"
            "        for _ in range(4):\n            f.write(chunk)\n"
            "print('ESCAPED wrote all')", kind="limit", host_check="tmp_cleanup"),
    Attempt("output", "exhaust the host's memory with output",
            "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)",
            kind="limit", host_check="output_capped"),
    Attempt("cpu", "burn CPU past the CPU-time limit (1 s here)", "while True:\n    pass", kind="limit",
            timeout=40.0, limits=(("cpu_s", 1),),
            host_check="cpu_killed"),
    Attempt("wall", "run past the wall-clock limit", "import time\ntime.sleep(60)", kind="limit", timeout=1.0,
            host_check="wall_killed"),
)
