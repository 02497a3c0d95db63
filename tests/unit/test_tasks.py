"""Task and tool-invocation rules on synthetic process trees (no kernel needed)."""

from opensre.correlate import Correlator, ToolIdentifier
from opensre.model import Process


def proc(pid, ppid, start, argv, exec_count=1, parent_start=None, cpu=10):
    return Process(pid=pid, start_time_ns=start, ppid=ppid, parent_start_time_ns=parent_start, argv=argv,
                   exe=argv[0], comm=argv[0].rsplit("/", 1)[-1][:15], exec_count=exec_count, complete=True,
                   end_time_ns=start + 100, cpu_user_ns=cpu, cpu_system_ns=0, peak_rss_bytes=cpu)


def test_subshell_forks_are_not_tool_invocations():
    # bash run.sh -> (subshell fork, never execs) -> gzip
    procs = [proc(10, 1, 1, ["bash", "run.sh"]),
             proc(11, 10, 2, ["bash", "run.sh"], exec_count=0, parent_start=1),
             proc(12, 11, 3, ["gzip", "-c", "x"], parent_start=2)]
    c = Correlator(ToolIdentifier.from_files()).correlate("r", procs)
    tools = sorted(u.tool for u in c.tools)
    assert tools == ["gzip", "run"], tools
    assert len(c.task_of) == 3  # every process still belongs to a task


def test_forked_workers_fold_into_their_invocation():
    procs = [proc(10, 1, 1, ["make"]),
             proc(11, 10, 2, ["python3", "train.py"], parent_start=1, cpu=5),
             proc(12, 11, 3, ["python3", "train.py"], exec_count=0, parent_start=2, cpu=7),
             proc(13, 11, 4, ["python3", "train.py"], exec_count=0, parent_start=2, cpu=9)]
    c = Correlator(ToolIdentifier.from_files()).correlate("r", procs)
    (use,) = [u for u in c.tools if u.tool == "train"]
    assert use.cpu_ns == 5 + 7 + 9 and use.peak_rss_bytes == 9
    (task,) = [t for t in c.tasks if t.kind == "task"]
    assert task.engine == "make" and task.process_count == 3


def test_a_programs_forked_workers_are_its_task_not_tasks_of_their_own():
    # `opensre run -- python pool.py`: a Pool(2) forks two workers that never exec
    procs = [proc(10, 1, 1, ["python3", "pool.py"], cpu=1),
             proc(11, 10, 2, ["python3", "pool.py"], exec_count=0, parent_start=1, cpu=40),
             proc(12, 10, 3, ["python3", "pool.py"], exec_count=0, parent_start=1, cpu=50)]
    c = Correlator(ToolIdentifier.from_files()).correlate("r", procs)
    (task,) = c.tasks
    assert task.process_count == 3 and task.cpu_ns == 91 and task.root_pid == 10
    (use,) = c.tools
    assert use.tool == "pool" and use.cpu_ns == 91


def test_a_shells_subshells_still_start_tasks():
    # bash -c '( gzip a ) & ( gzip b ) & wait': each subshell is a job of the root shell
    procs = [proc(10, 1, 1, ["bash", "-c", "..."]),
             proc(11, 10, 2, ["bash", "-c", "..."], exec_count=0, parent_start=1),
             proc(12, 11, 3, ["gzip", "a"], parent_start=2),
             proc(13, 10, 4, ["bash", "-c", "..."], exec_count=0, parent_start=1),
             proc(14, 13, 5, ["gzip", "b"], parent_start=4)]
    c = Correlator(ToolIdentifier.from_files()).correlate("r", procs)
    assert sorted(t.process_count for t in c.tasks if t.kind == "task") == [2, 2]


def test_show_caps_task_rows_and_keeps_failed_ones():
    from opensre.model import Task
    from opensre.report.summary import task_view

    tasks = [Task(run_id="r", task_id=f"t{i:04d}", task_name=f"job{i}", engine="make", start_time_ns=i,
                  end_time_ns=i + 10, cpu_ns=i, exit_code=1 if i == 3 else 0) for i in range(1, 1001)]
    text = task_view(tasks, [], limit=50)
    rows = [l for l in text.splitlines() if l[:1] == "t" and l[1:2].isdigit()]
    assert len(rows) == 50 and "t0003" in text  # the failed one, though it has little CPU
    assert "t1000" in text and "950 more tasks not shown" in text.splitlines()[-1]
    assert rows == sorted(rows)  # still in start order
