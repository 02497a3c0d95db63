from .summary import fmt_bytes, fmt_s, process_tree, run_summary, task_view

__all__ = ["fmt_bytes", "fmt_s", "process_tree", "run_summary", "task_view"]
