#!/usr/bin/env python3
"""`make bench`: measures gpu-setup against its floor and its alternatives,
and writes docs/benchmarks.md.

Tools (Debian): hyperfine, strace, time (/usr/bin/time). The Ansible
comparison needs ansible-core in .venv (as .ci/run makes it); without it
that section says so. Everything runs on temporary trees passed as --root:
the machine's own /etc, /usr and /var are never touched.
"""

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / "target/release/gpu-setup"
FIX = REPO / "tests/fixtures"
CONF = FIX / "containers.conf/debian-bookworm-0.50.1+ds1-4.conf"
NV = FIX / "nvidia-config.toml/nvidia-container-toolkit-v1.13.5-ubuntu.toml"
HOOK = FIX / "hooks/nvidia-container-toolkit-v1.13.5-oci-nvidia-hook.json"
RUNS = int(os.environ.get("BENCH_RUNS", "300"))
ANSIBLE_RUNS = int(os.environ.get("BENCH_ANSIBLE_RUNS", "5"))
JOURNAL = int(os.environ.get("BENCH_JOURNAL", "1000"))

TARGETS = {
    "usr/share/containers/containers.conf": CONF,
    "etc/nvidia-container-runtime/config.toml": NV,
    "usr/share/containers/oci/hooks.d/oci-nvidia-hook.json": HOOK,
}


def need(tool, package):
    if shutil.which(tool) is None:
        sys.exit(f"bench: needs `{tool}` (apt-get install {package})")


def stock_tree(root: Path, conf_text=None):
    """The stock files, and the toolkit's executables, under root."""
    if root.exists():
        shutil.rmtree(root)
    for rel, src in TARGETS.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, p)
    if conf_text is not None:
        (root / "usr/share/containers/containers.conf").write_text(conf_text)
    for exe in ["nvidia-container-runtime", "nvidia-container-toolkit"]:
        p = root / "usr/bin" / exe
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("#!/bin/sh\nexit 0\n")
        p.chmod(0o755)
    return root


def hyperfine(commands, work: Path, runs=RUNS, prepare=None, warmup=10):
    """Runs hyperfine; returns {name: {median, mean, stddev, min, max}} in ms."""
    out = work / "hyperfine.json"
    args = ["hyperfine", "--style", "none", "--warmup", str(warmup), "--runs", str(runs),
            "--export-json", str(out), "-N"]
    if prepare:
        args = [a for a in args if a != "-N"]
        args += ["--prepare", prepare]
    names = []
    for name, cmd in commands:
        args += ["--command-name", name, cmd]
        names.append(name)
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    results = json.loads(out.read_text())["results"]
    return {
        r["command"]: {k: r[k] * 1000 for k in ["median", "mean", "stddev", "min", "max"]}
        for r in results
    }


def instructions(cmd):
    """Instructions a command executes (valgrind's callgrind): repeatable
    where wall-clock time is noisy. None without valgrind."""
    if shutil.which("valgrind") is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "cg.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + cmd,
                       check=True, capture_output=True)
        m = re.search(r"^summary: (\d+)", out.read_text(), re.M)
        return int(m.group(1)) if m else None


def peak_rss_kib(cmd):
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    return int(m.group(1))


def syscalls(cmd, work: Path):
    """Filesystem-changing syscalls of a command, from strace -f."""
    log = work / "strace.log"
    subprocess.run(["strace", "-f", "-qq", "-o", str(log), "-e",
                    "trace=write,pwrite64,writev,rename,renameat,renameat2,fsync,fdatasync,"
                    "unlink,unlinkat,mkdir,mkdirat,openat,fchmod,fchown,fchownat,fsetxattr,flock"]
                   + cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    counts = {"write to a file": 0, "write to stdout/stderr": 0, "rename": 0, "fsync": 0,
              "unlink": 0, "mkdir": 0, "open for writing": 0, "chmod/chown/xattr": 0, "flock": 0}
    for line in log.read_text().splitlines():
        call = line.split(None, 1)[1] if " " in line else line
        name = call.split("(", 1)[0]
        if name in ("write", "pwrite64", "writev"):
            fd = int(call.split("(", 1)[1].split(",", 1)[0])
            counts["write to stdout/stderr" if fd in (1, 2) else "write to a file"] += 1
        elif name.startswith("rename"):
            counts["rename"] += 1
        elif name in ("fsync", "fdatasync"):
            counts["fsync"] += 1
        elif name.startswith("unlink"):
            counts["unlink"] += 1
        elif name.startswith("mkdir"):
            counts["mkdir"] += 1
        elif name == "openat" and re.search(r"O_WRONLY|O_RDWR|O_CREAT", call):
            counts["open for writing"] += 1
        elif name in ("fchmod", "fchown", "fchownat", "fsetxattr"):
            counts["chmod/chown/xattr"] += 1
        elif name == "flock":
            counts["flock"] += 1
    return counts


def scaled_conf(factor: int) -> str:
    """The stock containers.conf grown to about `factor` times its size,
    with the runtime table in the middle: blocks of the file's own lines
    commented out plus a filler table of 40 keys, half before the real
    content and half after."""
    stock = CONF.read_text()
    if factor == 1:
        return stock
    commented = "".join("# " + line + "\n" for line in stock.splitlines())
    blocks = []
    for i in range(factor - 1):
        keys = "".join(f'key_{j} = "value {j} of filler table {i}"\n' for j in range(40))
        filler = f"\n[filler_{i}]\n" + keys
        blocks.append(commented[: max(0, len(stock) - len(filler))] + filler)
    half = len(blocks) // 2
    # The stock file has no keys before its first table header, so nothing
    # of it falls into the last filler table before it.
    return "".join(blocks[:half]) + stock + "".join(blocks[half:])


def ansible_comparison(work: Path):
    venv = REPO / ".venv/bin/ansible-playbook"
    if not venv.exists():
        return None
    hosts = 3
    lib = work / "library"
    lib.mkdir(parents=True, exist_ok=True)
    shutil.copy(BIN, lib / "gpu_setup")
    pristine = work / "pristine"
    stock_tree(pristine)
    trees = [work / f"host{i}" for i in range(hosts)]
    inv = work / "inventory.ini"
    inv.write_text("[gpu_hosts]\n" + "".join(
        f"host{i} ansible_connection=local root={t}\n" for i, t in enumerate(trees)))
    (work / "gpu_setup.yml").write_text("""- hosts: gpu_hosts
  gather_facts: false
  tasks:
    - gpu_setup:
        root: "{{ root }}"
""")
    # The collection (ansible/collection), built and installed as a user
    # would; its module runs the gpu-setup on PATH (the package's).
    galaxy = REPO / ".venv/bin/ansible-galaxy"
    subprocess.run([str(galaxy), "collection", "build", str(REPO / "ansible/collection"),
                    "--output-path", str(work / "built")], check=True, capture_output=True)
    tarball = next((work / "built").glob("gpu_setup-podman_nvidia-*.tar.gz"))
    subprocess.run([str(galaxy), "collection", "install", "-p", str(work / "collections"),
                    str(tarball)], check=True, capture_output=True)
    bindir = work / "bin"
    bindir.mkdir()
    (bindir / "gpu-setup").symlink_to(BIN)
    (work / "collection.yml").write_text("""- hosts: gpu_hosts
  gather_facts: false
  tasks:
    - gpu_setup.podman_nvidia.gpu_setup:
        root: "{{ root }}"
""")
    # The same three edits with Ansible's built-in modules, as an admin
    # would write them today.
    hook = json.dumps(json.loads((REPO / "templates/oci-nvidia-hook.json").read_text()))
    (work / "builtin.yml").write_text(f"""- hosts: gpu_hosts
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        dest: "{{{{ root }}}}/etc/containers/containers.conf.d/99-nvidia.conf"
        content: |
          [engine.runtimes]
          nvidia = ["/usr/bin/nvidia-container-runtime"]
        mode: "0644"
    - ansible.builtin.lineinfile:
        path: "{{{{ root }}}}/etc/nvidia-container-runtime/config.toml"
        regexp: '^#?no-cgroups *='
        line: "no-cgroups = true"
        insertafter: '^\\[nvidia-container-cli\\]'

    - ansible.builtin.copy:
        dest: "{{{{ root }}}}/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json"
        content: '{hook}'
        mode: "0644"
""")
    # `copy` needs the drop-in dir; an admin's playbook would make it too.
    env = dict(os.environ, ANSIBLE_LIBRARY=str(lib), ANSIBLE_LOCAL_TEMP=str(work / "tmp"),
               ANSIBLE_PYTHON_INTERPRETER=str(REPO / ".venv/bin/python3"),
               ANSIBLE_COLLECTIONS_PATH=str(work / "collections"),
               PATH=f"{bindir}:{os.environ['PATH']}")
    os.environ.update(env)
    reset = " && ".join(
        f"rm -rf {t} && cp -a {pristine} {t} && mkdir -p {t}/etc/containers/containers.conf.d"
        for t in trees)
    play = f"{venv} -i {inv}"
    first = hyperfine([
        ("ansible built-in modules, first run", f"{play} {work}/builtin.yml"),
        ("gpu-setup module, first run", f"{play} {work}/gpu_setup.yml"),
        ("gpu-setup collection, first run", f"{play} {work}/collection.yml"),
    ], work, runs=ANSIBLE_RUNS, prepare=reset, warmup=1)
    noop = hyperfine([
        ("ansible built-in modules, no-op run", f"{play} {work}/builtin.yml"),
        ("gpu-setup module, no-op run", f"{play} {work}/gpu_setup.yml"),
        ("gpu-setup collection, no-op run", f"{play} {work}/collection.yml"),
    ], work, runs=ANSIBLE_RUNS, warmup=1)
    # What Ansible puts on each host for each task: one run of each with
    # the remote files kept, then the sizes of what it left.
    payload = {}
    for name, book in [("gpu-setup module (the binary)", "gpu_setup.yml"),
                       ("gpu-setup collection (the Python wrapper)", "collection.yml"),
                       ("ansible built-in modules (3 tasks)", "builtin.yml")]:
        remote = work / "remote" / book
        remote.mkdir(parents=True)
        subprocess.run(f"{reset} && {play} {work}/{book} -l host0", shell=True, check=True,
                       capture_output=True,
                       env=dict(env, ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_REMOTE_TEMP=str(remote)))
        files = [f for f in remote.rglob("AnsiballZ_*") if f.is_file()]
        payload[name] = (len(files), sum(f.stat().st_size for f in files))
    version = subprocess.run([str(venv), "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return hosts, version, first, noop, payload


def main():
    for tool, pkg in [("hyperfine", "hyperfine"), ("strace", "strace")]:
        need(tool, pkg)
    if not Path("/usr/bin/time").exists():
        sys.exit("bench: needs /usr/bin/time (apt-get install time)")
    if not BIN.exists():
        sys.exit("bench: build first (make build)")
    work = Path(tempfile.mkdtemp(prefix="gpu-setup-bench-"))
    try:
        report = run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = REPO / "docs/benchmarks.md"
    out.write_text(report)
    print(f"wrote {out}")


def run(work: Path) -> str:
    b = str(BIN)
    t = stock_tree(work / "stock")
    files = " ".join(str(t / rel) for rel in TARGETS)

    # 1. plan against the floor: cat of the same files.
    r1 = hyperfine([
        ("cat of the three files", f"cat {files}"),
        ("gpu-setup plan", f"{b} --root {t} --color never plan"),
    ], work)
    ratio1 = r1["gpu-setup plan"]["median"] / r1["cat of the three files"]["median"]
    instr = {
        "cat of the three files": instructions(["cat"] + files.split()),
        "gpu-setup plan": instructions([b, "--root", str(t), "--color", "never", "plan"]),
    }

    # 2. apply: a real change (reset before each run) and a no-op.
    pristine = stock_tree(work / "pristine")
    live = work / "live"
    r2 = hyperfine([
        ("gpu-setup apply (3 files, with fsyncs)", f"{b} --root {live} --color never apply"),
    ], work, runs=min(RUNS, 100), prepare=f"rm -rf {live} && cp -a {pristine} {live}")
    configured = stock_tree(work / "configured")
    subprocess.run([b, "--root", str(configured), "apply"], check=True, capture_output=True)
    r2 |= hyperfine([
        ("gpu-setup apply, nothing to do", f"{b} --root {configured} --color never apply"),
    ], work)
    noop_calls = syscalls([b, "--root", str(configured), "--color", "never", "apply"], work)
    shutil.rmtree(live, ignore_errors=True)
    shutil.copytree(pristine, live, symlinks=True)
    change_calls = syscalls([b, "--root", str(live), "--color", "never", "apply"], work)

    # 3. peak memory.
    shutil.rmtree(live)
    shutil.copytree(pristine, live, symlinks=True)
    rss = {
        "plan": peak_rss_kib([b, "--root", str(t), "plan"]),
        "apply (3 files)": peak_rss_kib([b, "--root", str(live), "apply"]),
        "apply, nothing to do": peak_rss_kib([b, "--root", str(configured), "apply"]),
    }
    # 40x (about 1 MB) is the largest file gpu-setup reads (docs/security.md, R10).
    big = stock_tree(work / "big", scaled_conf(40))
    rss["plan, containers.conf 40x"] = peak_rss_kib(
        [b, "--root", str(big), "plan", "--containers-conf", "/usr/share/containers/containers.conf"])

    # 4. scaling with containers.conf size (edited in place).
    scale = []
    for factor in [1, 10, 40]:
        tree = stock_tree(work / f"scale{factor}", scaled_conf(factor))
        size = (tree / "usr/share/containers/containers.conf").stat().st_size
        r = hyperfine([(f"{factor}x", f"{b} --root {tree} --color never plan "
                        "--containers-conf /usr/share/containers/containers.conf")],
                      work, runs=min(RUNS, 100))
        scale.append((factor, size, r[f"{factor}x"]["median"]))

    # 4b. A hook file of short lines (the review's denial of service: a
    # valid JSON the diff replaced line by line), up to the 1 MiB limit.
    hook_scale = []
    for lines in [5_000, 40_000, 250_000]:
        tree = stock_tree(work / f"hook{lines}")
        hook = tree / "usr/share/containers/oci/hooks.d/oci-nvidia-hook.json"
        hook.parent.mkdir(parents=True, exist_ok=True)
        body = "[\n" + "".join("0,\n" for _ in range(lines - 2)) + "0]\n"
        hook.write_text(body)
        size = hook.stat().st_size
        r = hyperfine([(f"{lines} lines", f"{b} --root {tree} --color never plan")],
                      work, runs=min(RUNS, 30), warmup=2)
        hook_scale.append((lines, size, r[f"{lines} lines"]["median"]))
    scale_hook = hook_scale

    # 5. Ansible.
    ans = ansible_comparison(work / "ansible")

    # 6. A long journal: plan's cost must not grow with it.
    journal = stock_tree(work / "journal")
    for _ in range(JOURNAL // 2):
        for cmd in ("apply", "rollback"):
            subprocess.run([b, "--root", str(journal), cmd], check=True, capture_output=True)
    r6 = hyperfine([
        ("plan, empty journal", f"{b} --root {t} --color never plan"),
        (f"plan, {JOURNAL} transactions in the journal", f"{b} --root {journal} --color never plan"),
    ], work)

    # 7. The host facts on a real host: this machine's own root, read-only
    # (plan writes nothing), with its real dpkg database (the status file
    # and every package's file list), against cat of the same files.
    status = Path("/var/lib/dpkg/status")
    r7 = {}
    if status.exists():
        lists = " ".join(str(p) for p in sorted(Path("/var/lib/dpkg/info").glob("*.list")))
        r7 = hyperfine([
            ("cat of dpkg's status and lists", f"sh -c 'cat {status} {lists} >/dev/null'"),
            ("gpu-setup plan on this machine", f"{b} --color never plan"),
            ("gpu-setup plan --podman-version 4.3.1 on this machine", f"{b} --color never plan --podman-version 4.3.1"),
        ], work, runs=min(RUNS, 50), warmup=3)
        r7["_status_bytes"] = status.stat().st_size
        r7["_lists"] = len(lists.split())

    return render(r1, ratio1, instr, r2, noop_calls, change_calls, rss, scale, ans, r6, scale_hook, r7)


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def render(r1, ratio1, instr, r2, noop_calls, change_calls, rss, scale, ans, r6, scale_hook, r7) -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/bench.py`); do not edit by hand. Times are",
        "wall-clock medians from hyperfine over many runs on a shared, noisy",
        "machine: read ratios, not absolute numbers.",
        "",
        "## Machine and method",
        "",
        f"- CPU: {cpu}, {os.cpu_count()} cores; kernel {platform.release()}",
        f"- gpu-setup: `{version([str(BIN), '--version'])}` (release build)",
        f"- {version(['hyperfine', '--version'])}, {version(['strace', '-V'])}, GNU time",
        f"- runs: {RUNS} per command (hyperfine `-N`, no shell, 10 warm-up runs) unless said",
        "- inputs: Debian bookworm's containers.conf, Ubuntu's NVIDIA config.toml (toolkit",
        "  v1.13.5) and NVIDIA's v1.13.5 hook JSON from `tests/fixtures`, in a temp tree",
        "  passed as `--root`",
        "",
        "## 1. `plan` against the floor",
        "",
        "| Command | Median (ms) | Mean ± σ (ms) |",
        "|---|---|---|",
    ]
    for name, r in r1.items():
        lines.append(f"| {name} | {r['median']:.2f} | {r['mean']:.2f} ± {r['stddev']:.2f} |")
    verdict = "within" if ratio1 <= 2 else "over"
    lines += [
        "",
        f"Ratio of medians: **{ratio1:.2f}x** the floor (budget 2x: {verdict}).",
        "",
    ]
    if all(instr.values()):
        cat_i, plan_i = instr["cat of the three files"], instr["gpu-setup plan"]
        lines += [
            "Instructions executed (callgrind; the same on every run, unlike time):",
            f"`cat` {cat_i:,}, `plan` {plan_i:,} ({plan_i / cat_i:.1f}x). The wall-clock",
            "ratio is far below the instruction ratio because most of either",
            "command's time is the kernel's exec, page faults and mapping, which cost",
            "about the same for both.",
            "",
        ]
    if ratio1 > 2:
        lines += [
            "Gap: the rest of `plan`'s time is its own work. Profiled with callgrind",
            "(a build with symbols): about a fifth is clap building and parsing the",
            "command line, about a third is parsing Debian's 24 KB containers.conf",
            "(mostly comments) for the warnings, which must read every file Podman",
            "reads, and the rest is the three edits (each re-parsed to verify it),",
            "the diffs, and the reads of the drop-in, hooks and CDI directories and",
            "the journal. Full LTO, a stripped binary, buffered output, no user-database",
            "lookup unless writing, a read-only parse for the warnings, and reusing",
            "the files and directories the warnings already read (4.2M instructions",
            "to 3.2M) brought it here; going further means a cheaper TOML parser for",
            "comment-heavy files or skipping files Podman reads, which the warnings",
            "need.",
            "",
        ]
    lines += [
        "## 2. `apply`",
        "",
        "| Command | Median (ms) | Mean ± σ (ms) |",
        "|---|---|---|",
    ]
    for name, r in r2.items():
        lines.append(f"| {name} | {r['median']:.2f} | {r['mean']:.2f} ± {r['stddev']:.2f} |")
    lines += [
        "",
        "The real change resets the tree before each run (hyperfine `--prepare`), so",
        "every run is a full transaction: journal entry, copies, three atomic writes,",
        "fsyncs of files and directories.",
        "",
        "Filesystem syscalls (`strace -f`):",
        "",
        "| Syscalls | apply, nothing to do | apply, 3 files |",
        "|---|---|---|",
    ]
    for k in noop_calls:
        lines.append(f"| {k} | {noop_calls[k]} | {change_calls[k]} |")
    lines += [
        "",
        "A no-op apply opens nothing for writing and does no rename, fsync, mkdir,",
        "unlink or lock: its only writes are its report on stdout.",
        "",
        "## 3. Peak memory (`/usr/bin/time -v`, maximum resident set size)",
        "",
        "| Command | Peak RSS (MiB) | Budget 10 MiB |",
        "|---|---|---|",
    ]
    for name, kib in rss.items():
        if "40x" in name:
            verdict = "not a budget case: input 40x the stock size (the 1 MiB read limit)"
        else:
            verdict = "ok" if kib <= 10 * 1024 else "over"
        lines.append(f"| {name} | {kib / 1024:.1f} | {verdict} |")
    lines += [
        "",
        "Memory grows with the edited file: toml_edit keeps every comment, space and",
        "span of the document, and the plan holds the before and after text and the",
        "diff.",
        "",
        "## 4. Scaling with containers.conf size",
        "",
        "`plan --containers-conf /usr/share/containers/containers.conf`, the file grown",
        "with commented copies of itself and filler tables, the runtime table in the",
        "middle.",
        "",
        "| Size | Bytes | Median (ms) | ms per 100 KB |",
        "|---|---|---|---|",
    ]
    for factor, size, median in scale:
        lines.append(f"| {factor}x | {size} | {median:.2f} | {median / size * 100_000:.2f} |")
    (_, s1, m1), (top, s100, m100) = scale[0], scale[-1]
    growth = (m100 / m1) / (s100 / s1)
    lines += [
        "",
        f"From 1x to {top}x the time grows {m100 / m1:.1f}x for {s100 / s1:.0f}x the bytes "
        f"({growth:.2f} of linear): {'at most linear' if growth <= 1.1 else 'worse than linear'}.",
        "",
        "## 4b. A large hook file of short lines",
        "",
        "`plan` on a tree whose hook file is a valid JSON array of N short lines (the",
        "security review's denial of service: gpu-setup replaces it whole, and the",
        "diff was quadratic). Past 4000 differing lines the diff is one linear hunk",
        "(docs/security.md, R19).",
        "",
        "| Lines | Bytes | Median (ms) | ms per 100 KB |",
        "|---|---|---|---|",
    ]
    for n, size, median in scale_hook:
        lines.append(f"| {n} | {size} | {median:.2f} | {median / size * 100_000:.2f} |")
    (_, h1, t1), (_, hn, tn) = scale_hook[0], scale_hook[-1]
    hgrowth = (tn / t1) / (hn / h1)
    lines += [
        "",
        f"From the smallest to the largest the time grows {tn / t1:.1f}x for {hn / h1:.0f}x the bytes "
        f"({hgrowth:.2f} of linear): {'at most linear' if hgrowth <= 1.1 else 'worse than linear'}.",
        "",
        "## 5. Against an Ansible playbook of built-in modules",
        "",
    ]
    if ans is None:
        lines.append("Not measured: needs ansible-core in `.venv` (see docs/provisioning.md).")
    else:
        hosts, ver, first, noop, payload = ans
        lines += [
            f"{ver}; {hosts} local hosts (`ansible_connection=local`, each its own tree),",
            f"{ANSIBLE_RUNS} runs each (hyperfine, 1 warm-up). The built-in playbook does the",
            "same three edits with `copy` (drop-in), `lineinfile` (`no-cgroups`) and `copy`",
            "(hook JSON); the others run one task: the binary as a library module, or the",
            "collection's `gpu_setup.podman_nvidia.gpu_setup` (a Python wrapper that runs",
            "the gpu-setup on PATH). First runs reset the trees before each run.",
            "",
            "| Playbook | Median (s) | Mean ± σ (s) |",
            "|---|---|---|",
        ]
        for r in (first, noop):
            for name, v in r.items():
                lines.append(f"| {name} | {v['median'] / 1000:.2f} | {v['mean'] / 1000:.2f} ± {v['stddev'] / 1000:.2f} |")
        f_ratio = first["gpu-setup module, first run"]["median"] / first["ansible built-in modules, first run"]["median"]
        n_ratio = noop["gpu-setup module, no-op run"]["median"] / noop["ansible built-in modules, no-op run"]["median"]
        lines += [
            "",
            f"gpu-setup module / built-in playbook: **{f_ratio:.2f}x** on a first run,",
            f"**{n_ratio:.2f}x** on a no-op run (below 1 is faster). Ansible's own",
            "per-task overhead dominates both; one task instead of three is most of the",
            "difference. The built-in playbook also does less: no backups, no journal,",
            "no rollback, no check of the hook or runtime, and its `lineinfile` regexp",
            "edits the first `no-cgroups` line in the file whatever its table.",
            "",
            "Payload per host per run: what Ansible copies to the host for the play",
            "(`ANSIBLE_KEEP_REMOTE_FILES=1`, the `AnsiballZ_*` files it leaves):",
            "",
            "| Play | Files | Bytes |",
            "|---|---|---|",
        ]
        for name, (count, size) in payload.items():
            lines.append(f"| {name} | {count} | {size} |")
        lines += [
            "",
            "The binary module copies the whole binary for every task on every host; the",
            "collection copies only its wrapper (with Ansible's module_utils) and runs",
            "the binary the host's package installed (docs/provisioning.md).",
        ]
    lines += [
        "",
        "## 6. A long journal",
        "",
        "Every `plan` and `apply` first checks the journal for an interrupted",
        "transaction. It lists the transaction directories and parses only the newest",
        "manifest (the only one that can be pending) and, for a rollback, looks at",
        "the one it undid; what remains is listing the directory.",
        "",
        "| Command | Median (ms) | Mean ± σ (ms) |",
        "|---|---|---|",
    ]
    for name, r in r6.items():
        lines.append(f"| {name} | {r['median']:.2f} | {r['mean']:.2f} ± {r['stddev']:.2f} |")
    lines += [
        "",
        "## 7. Knowing the host: the real root and its package database",
        "",
    ]
    if not r7:
        lines.append("Not measured: this machine has no dpkg database.")
    else:
        lines += [
            "`plan` on this machine's own `/` (read-only), where the host facts read",
            f"dpkg's status file ({r7['_status_bytes']} bytes) for the Podman and toolkit",
            f"versions and its {r7['_lists']} package lists for the managed files'",
            "owners; no program is started for a version the database names. Against",
            "cat of the same database files.",
            "",
            "| Command | Median (ms) | Mean ± σ (ms) |",
            "|---|---|---|",
        ]
        for name, r in r7.items():
            if name.startswith("_"):
                continue
            lines.append(f"| {name} | {r['median']:.2f} | {r['mean']:.2f} ± {r['stddev']:.2f} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
