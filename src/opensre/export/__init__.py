from .jsonl import KINDS, process_record, records, write_processes, write_records

__all__ = ["KINDS", "process_record", "records", "write_processes", "write_records"]
