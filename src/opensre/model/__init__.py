from .process import PROCESS_FIELDS, SAMPLE_FIELDS, Event, Exec, Host, Process, Run, Sample, failed
from .task import Task, ToolUse, tool_label

__all__ = ["Event", "Exec", "Host", "Process", "Run", "Sample", "Task", "ToolUse", "PROCESS_FIELDS",
           "SAMPLE_FIELDS", "failed", "tool_label"]
