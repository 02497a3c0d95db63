from .jsonl import process_record, write_processes

__all__ = ["process_record", "write_processes"]
