"""Hostile: the files of a daily pipeline (issue 24, items 1 and 3). One writer per state (an OS
lock, tried with threads, processes and a writer killed while it holds the lock); nothing a
command reads is written over, whatever the spelling of the paths; two outputs of one command
never share a file; writes through symbolic links keep the link; several files are written
all or nothing."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from helpers import REPOSITORY, one_line_error
from hypothesis import given, settings
from hypothesis import strategies as st
from rfm_fast_cli.main import app
from typer.testing import CliRunner

import rfm_fast
from rfm_fast.actions import lists as lists_module
from rfm_fast.core.io import same_path, write_together
from rfm_fast.daily.lock import lock_path, remove_leftovers, state_lock
from rfm_fast.errors import RFMError

runner = CliRunner()
ROOT = REPOSITORY
COLUMNS = {"customer": "customer", "timestamp": "timestamp", "amount": "amount"}


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def orders(day: int, customers: list[int], amount: float = 10.0) -> pa.Table:
    when = dt.date(2024, 1, 1) + dt.timedelta(days=day)
    return pa.table(
        {
            "customer": pa.array(customers, pa.int64()),
            "timestamp": pa.array([when] * len(customers), pa.date32()),
            "amount": [amount + k for k in range(len(customers))],
        }
    )


def new_state(folder: Path, name: str = "s.rfmstate") -> Path:
    path = folder / name
    rfm_fast.DailyState.init(orders(0, [1, 2, 3, 4]), **COLUMNS).save(path)
    return path


def sources(path: Path) -> list[str]:
    return [load.source for load in rfm_fast.DailyState.open(path).loads]


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder``: a file's bytes, a link's target, a folder's mark."""
    seen: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            seen[name] = "-> " + os.readlink(path)
        elif path.is_dir():
            seen[name] = "folder"
        else:
            seen[name] = path.read_bytes()
    return seen


# --------------------------------------------------------------------------- one writer


def test_threads_that_lock_never_lose_a_load(tmp_path: Path):
    state = new_state(tmp_path)
    days = []
    for k in range(1, 25):
        day = tmp_path / f"day{k:02}.parquet"
        pq.write_table(orders(k, [k % 5 + 1, 7]), day)
        days.append(day)
    failures: list[BaseException] = []

    def writer(day: Path) -> None:
        try:
            with state_lock(state, wait=120):
                daily = rfm_fast.DailyState.open(state)
                daily.update(day)
                daily.save(state)
        except BaseException as exc:  # (reported below)
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(day,)) for day in days]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(sources(state)[1:]) == [day.name for day in days]
    assert not lock_path(state).exists()


def test_a_save_over_a_state_changed_since_it_was_read_is_refused(tmp_path: Path):
    """Without the lock around open, update and save, the check at save time refuses the
    second writer: every save that succeeded is in the file, and no other load."""
    state = new_state(tmp_path)
    first, second = rfm_fast.DailyState.open(state), rfm_fast.DailyState.open(state)
    first.update(orders(1, [1]))
    second.update(orders(2, [2]))
    first.save(state)
    saved = state.read_bytes()
    with pytest.raises(RFMError, match="saved by another writer after this state was read"):
        second.save(state)
    assert state.read_bytes() == saved
    first.update(orders(3, [3]))  # its own saves do not count as another writer's
    first.save(state)
    assert len(rfm_fast.DailyState.open(state).loads) == 3


@settings(max_examples=20, deadline=None)
@given(plan=st.lists(st.sampled_from(["open", "save"]), min_size=2, max_size=12))
def test_unlocked_writers_lose_no_saved_load(plan: list[str]):
    """Writers that open and save in any interleaving: a save either keeps every load saved
    before it or is refused."""
    with _folder() as folder:
        state = new_state(folder)
        opened: list[tuple[int, rfm_fast.DailyState]] = []
        saved: list[int] = []
        for step, action in enumerate(plan):
            if action == "open":
                daily = rfm_fast.DailyState.open(state)
                daily.update(orders(step + 1, [step % 4 + 1]))
                opened.append((step, daily))
            elif opened:
                step_opened, daily = opened.pop(0)
                try:
                    daily.save(state)
                    saved.append(step_opened)
                except RFMError as exc:
                    assert "saved by another writer" in str(exc)
        final = rfm_fast.DailyState.open(state).loads[1:]
        days = [dt.date(2024, 1, 1) + dt.timedelta(days=step + 1) for step in saved]
        assert [load.first for load in final] == [day.isoformat() for day in days]


def test_concurrent_update_commands_keep_every_load(tmp_path: Path):
    """Several `rfm state update` processes at once on one state, each with its own load."""
    _updates_at_once(tmp_path, rounds=1, at_once=4)


@pytest.mark.slow
def test_twenty_pairs_of_update_commands_keep_every_load(tmp_path: Path):
    _updates_at_once(tmp_path, rounds=20, at_once=2)


def _updates_at_once(folder: Path, rounds: int, at_once: int) -> None:
    state = new_state(folder)
    expected = []
    for round_ in range(rounds):
        running = []
        for k in range(at_once):
            day = folder / f"day{round_:02}_{k}.parquet"
            pq.write_table(orders(1 + round_, [k + 1, 100 + round_]), day)
            expected.append(day.name)
            running.append(_cli_process("state", "update", state, day, "--no-progress"))
        for process in running:
            _, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
            assert err == "" or err.startswith("waiting for the lock on "), err
    assert sorted(sources(state)[1:]) == sorted(expected)
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".parquet")) == [
        state.name
    ]


_HOLDER = """
import sys, time
from pathlib import Path
from rfm_fast.daily.lock import state_lock
state = Path(sys.argv[1])
with state_lock(state):
    (state.parent / f".{state.name}.killedxx.tmp").write_bytes(b"half a state")
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_writer_killed_holding_the_lock_does_not_block_the_next(tmp_path: Path):
    state = new_state(tmp_path)
    day = tmp_path / "day.parquet"
    pq.write_table(orders(5, [1, 9]), day)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(state)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=_env(),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        busy = f"another process \\(process {holder.pid}\\)"
        with pytest.raises(RFMError, match=busy), state_lock(state, wait=0):
            pass
        result = run("state", "update", state, day, "--wait", "0.3")
        assert result.exit_code == 1
        waited, refused = [line for line in result.stderr.splitlines() if line.strip()]
        assert waited.startswith(f"waiting for the lock on {state}")
        assert refused.startswith("error: ") and "--wait SECONDS" in refused
        assert sources(state) == ["Table"]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
        holder.stdout.close()
    assert lock_path(state).exists()  # left by the killed writer; its lock died with it
    result = run("state", "update", state, day)
    assert result.exit_code == 0, result.output
    assert sources(state) == ["Table", "day.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["day.parquet", "s.rfmstate"]


def test_only_the_states_own_leftovers_are_removed(tmp_path: Path):
    state = tmp_path / "s.rfmstate"
    ours = [".s.rfmstate.abcd_123.tmp", ".s.rfmstate.zzzzzzzz.tmp"]
    others = [
        ".s.rfmstate.x.abcdefgh.tmp",  # a temporary file of the state s.rfmstate.x
        ".s.rfmstate.abc.tmp",
        "s.rfmstate.abcdefgh.tmp",
        ".t.rfmstate.abcdefgh.tmp",
    ]
    for name in ours + others:
        (tmp_path / name).write_bytes(b"")
    assert sorted(p.name for p in remove_leftovers(state)) == sorted(ours)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)


def test_the_lock_is_taken_once_per_thread_and_waits_are_checked(tmp_path: Path):
    state = tmp_path / "s.rfmstate"
    with state_lock(state) as lock, state_lock(tmp_path / "." / "s.rfmstate") as again:
        assert lock == again and lock.exists()
    assert not lock.exists()
    with pytest.raises(RFMError, match="seconds >= 0"), state_lock(state, wait=-1):
        pass
    missing = tmp_path / "no such folder" / "s.rfmstate"
    with pytest.raises(RFMError, match="cannot make its lock file"), state_lock(missing):
        pass
    users = tmp_path / "s.rfmstate.lock"  # a file of the user's with the lock file's name
    users.write_text("customer,timestamp,amount\n1,2024-01-01,10\n")
    with pytest.raises(RFMError, match="is not an rfm_fast lock file"), state_lock(state):
        pass
    assert users.read_text() == "customer,timestamp,amount\n1,2024-01-01,10\n"


def test_without_fcntl_the_lock_module_still_imports_and_runs(tmp_path: Path):
    """As on Windows without msvcrt (or another system without either): no OS lock, and
    nothing else changes."""
    script = (
        "import sys; sys.modules['fcntl'] = None; sys.modules['msvcrt'] = None\n"
        "from rfm_fast.daily.lock import state_lock\n"
        "with state_lock(sys.argv[1]) as lock: print(lock.exists())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "s.rfmstate")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        timeout=300,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "True\n", "")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- path spellings

SPELLINGS = ("plain", "dot", "absolute", "parent", "doubled", "link", "folder link")


def spelled(kind: str, folder: Path, name: str) -> str:
    """``data/NAME`` as seen from ``folder`` (the working folder), spelled as ``kind`` says;
    the links are made here (and point at files that may not exist)."""
    if kind == "plain":
        return f"data/{name}"
    if kind == "dot":
        return f"./data/./{name}"
    if kind == "absolute":
        return str(folder / "data" / name)
    if kind == "parent":
        return f"../{folder.name}/data/{name}"
    if kind == "doubled":
        return f"data//{name}"
    if kind == "link":
        link = folder / f"link-{name}"
        if not link.is_symlink():
            link.symlink_to(Path("data") / name)
        return link.name
    alias = folder / "alias"
    if not alias.is_symlink():
        alias.symlink_to("data", target_is_directory=True)
    return f"alias/{name}"


def _score(a, b):
    return ["score", a("orders.csv"), "-o", b("orders.csv")], "is the input file"


def _init(a, b):
    return ["state", "init", a("orders.csv"), "-o", b("orders.csv")], "is the input file"


def _update_input(a, b):
    args = ["state", "update", "data/state.arrow", a("day.parquet"), "-o", b("day.parquet")]
    return args, "is the input file"


def _update_state(a, b):
    args = ["state", "update", a("state.arrow"), "data/day.parquet", "--changes", b("state.arrow")]
    return args, "is the input file"


def _state_score(a, b):
    return ["state", "score", a("state.arrow"), "-o", b("state.arrow")], "is the input file"


def _segments(a, b):
    return ["segments", a("orders.csv"), "-o", b("orders.csv")], "is the input file"


def _clv(a, b):
    return ["clv", a("orders.csv"), "-o", b("orders.csv")], "is the input file"


def _update_outputs(a, b):
    args = ["state", "update", "data/state.arrow", "data/day.parquet", "-o", a("y.csv")]
    return [*args, "--changes", b("y.csv")], "are one file"


def _migrate_outputs(a, b):
    args = ["migrate", "data/orders.csv", "--as-of", "2024-01-02", "--as-of", "2024-01-09"]
    args += ["--from", "Champions", "--to", "At Risk", "-o", a("m.csv")]
    return [*args, "--movers-output", b("m.csv")], "are one file"


def _campaign(a, b):
    args = ["campaign", "data/orders.csv", "--campaign", a("sent.csv"), "--days", "5"]
    return [*args, "-o", b("sent.csv")], "is the input file"


def _export(a, b):
    return ["export", a("orders.csv"), "-o", b("orders.csv")], "is the input file"


def _export_folder(a, b):
    """The input is one of the files --per-segment would write (its folder given)."""
    args = ["export", a("hibernating.csv"), "--per-segment", "-o", b("").rstrip("/") or "."]
    return args, "is the input file"


CASES = {
    "score": _score,
    "state init": _init,
    "state update input": _update_input,
    "state update state": _update_state,
    "state update two outputs": _update_outputs,
    "state score": _state_score,
    "segments": _segments,
    "clv": _clv,
    "migrate two outputs": _migrate_outputs,
    "campaign": _campaign,
    "export": _export,
    "export --per-segment": _export_folder,
}


@pytest.fixture(scope="module")
def spelled_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("spellings")
    data = folder / "data"
    data.mkdir()
    table = pa.concat_tables([orders(day, [1, 2, 3]) for day in range(0, 8, 2)])
    pa_csv.write_csv(table, data / "orders.csv")
    pa_csv.write_csv(table, data / "hibernating.csv")
    pq.write_table(orders(9, [2, 5]), data / "day.parquet")
    rfm_fast.DailyState.init(table, **COLUMNS).save(data / "state.arrow")
    sent = pa.table({"customer": [1, 2], "group": ["treatment", "control"]})
    sent = sent.append_column("sent_at", pa.array(["2024-01-03", "2024-01-03"]))
    pa_csv.write_csv(sent, data / "sent.csv")
    return folder


@settings(max_examples=80, deadline=None)
@given(
    case=st.sampled_from(sorted(CASES)),
    read=st.sampled_from(SPELLINGS),
    written=st.sampled_from(SPELLINGS),
)
def test_no_command_writes_over_what_it_reads_however_spelled(
    spelled_folder: Path, case: str, read: str, written: str
):
    folder = spelled_folder
    args, message = CASES[case](
        lambda name: spelled(read, folder, name), lambda name: spelled(written, folder, name)
    )
    before = snapshot(folder)
    with contextlib.chdir(folder):
        result = run(*args)
    one_line_error(result, message)
    assert snapshot(folder) == before


def test_same_path_resolves_spellings_of_files_that_do_not_exist(tmp_path: Path):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    with contextlib.chdir(tmp_path):
        assert same_path("real/new.csv", "alias/../real//new.csv")
        assert same_path("alias/new.csv", tmp_path / "real" / "new.csv")
        assert not same_path("real/new.csv", "real/new.csv.csv")


# --------------------------------------------------------------------------- state init --force


def test_state_init_over_an_existing_file_needs_force(tmp_path: Path):
    history = tmp_path / "history.parquet"
    pq.write_table(orders(0, [1, 2, 3]), history)
    state = new_state(tmp_path, "old.rfmstate")
    daily = rfm_fast.DailyState.open(state)
    daily.update(orders(3, [1]))
    daily.save(state)
    kept = state.read_bytes()
    link = tmp_path / "link.rfmstate"
    link.symlink_to(state.name)
    for target in (state, link, tmp_path / "." / "old.rfmstate"):
        one_line_error(run("state", "init", history, "-o", target), "exists", "--force")
        assert state.read_bytes() == kept
    result = run("state", "init", history, "-o", link, "--force")
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and state.read_bytes() != kept
    assert sources(state) == ["history.parquet"]
    with pytest.raises(RFMError, match="overwrite=True"):
        rfm_fast.DailyState.open(state).save(state, overwrite=False)


# --------------------------------------------------------------------------- links


def test_writes_through_a_symbolic_link_replace_its_target_and_keep_it(tmp_path: Path):
    history = tmp_path / "history.parquet"
    pq.write_table(orders(0, [1, 2, 3]), history)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "scores.csv").write_text("old")
    (tmp_path / "scores.csv").symlink_to(elsewhere / "scores.csv")
    (tmp_path / "new.csv").symlink_to(elsewhere / "new.csv")  # dangling: made through it
    for name in ("scores.csv", "new.csv"):
        result = run("score", history, "-o", tmp_path / name)
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).is_symlink()
        assert pa_csv.read_csv(elsewhere / name).num_rows == 3

    new_state(elsewhere, "real.rfmstate")
    (tmp_path / "s.rfmstate").symlink_to(elsewhere / "real.rfmstate")
    day = tmp_path / "day.parquet"
    pq.write_table(orders(4, [2]), day)
    result = run("state", "update", tmp_path / "s.rfmstate", day)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s.rfmstate").is_symlink()
    assert sources(elsewhere / "real.rfmstate") == ["Table", "day.parquet"]
    assert sorted(p.name for p in elsewhere.iterdir()) == ["new.csv", "real.rfmstate", "scores.csv"]


# --------------------------------------------------------------------------- all or nothing


@settings(max_examples=40, deadline=None)
@given(
    existing=st.lists(st.booleans(), min_size=2, max_size=6),
    data=st.data(),
)
def test_several_files_are_written_all_or_nothing(existing: list[bool], data):
    """One of the targets cannot be replaced (a folder stands there): the files renamed before
    it are put back, the new ones removed, and no temporary file is left."""
    blocked = data.draw(st.integers(0, len(existing) - 1))
    with _folder() as folder:
        paths = [folder / f"out{k}.csv" for k in range(len(existing))]
        for k, (path, there) in enumerate(zip(paths, existing, strict=True)):
            if k == blocked:
                path.mkdir()
            elif there:
                path.write_text(f"old {k}")
        before = snapshot(folder)
        writes = [(path, lambda temporary: temporary.write_text("new")) for path in paths]
        with pytest.raises(RFMError, match=f"cannot write {paths[blocked]}"):
            write_together(writes)
        assert snapshot(folder) == before


def test_a_failed_export_per_segment_leaves_every_file_as_it_was(tmp_path: Path):
    """A folder where one list goes: refused before any file is written (the put-back of files
    already renamed is the property test above)."""
    history = tmp_path / "history.parquet"
    table = pa.concat_tables([orders(day, [1, 2, 3, 4, day + 5]) for day in range(0, 60, 6)])
    pq.write_table(table, history)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "champions.csv").write_text("yesterday's champions")
    (lists / "loyal_customers.csv").write_text("yesterday's loyal customers")
    (lists / "hibernating.csv").mkdir()  # cannot be replaced: the run fails on it
    before = snapshot(tmp_path)
    result = run("export", history, "--per-segment", "-o", lists)
    one_line_error(result, "hibernating.csv")
    assert snapshot(tmp_path) == before


def test_a_failed_export_per_segment_leaves_no_new_folder(tmp_path: Path, monkeypatch):
    result = rfm_fast.score(orders(0, [1, 2, 3]), **COLUMNS)
    customers = rfm_fast.customer_list(result)
    written = lists_module.table_writer

    def failing(table: pa.Table, path: Path):
        if not path.name.startswith("hibernating"):
            return written(table, path)

        def write(temporary: Path) -> None:
            temporary.write_text("half a list")
            raise OSError(28, "No space left on device")

        return write

    monkeypatch.setattr(lists_module, "table_writer", failing)
    with pytest.raises(RFMError, match=r"hibernating\.csv: the disk is full"):
        lists_module.write_lists(customers, tmp_path / "new", segments=["Champions", "Hibernating"])
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _folder():
    """A fresh temporary folder (for a Hypothesis example: no function-scoped fixture)."""
    import tempfile

    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _cli_process(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rfm_fast_cli", *(str(a) for a in args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=_env(),
    )
