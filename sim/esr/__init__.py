"""Deterministic synthetic ESR Generic Outbound (GO) files for tests and demos.

    generate(out_dir, ...) -> GeneratedSet   full file + daily deltas + manifest
    write_file(path, header, records)        any GO file with a correct HDR/TRL
    corrupt(path, kind)                      a copy with one file-level problem
"""
from .files import CORRUPT_KINDS, corrupt, go_name, write_file
from .generator import SCENARIO, GeneratedSet, generate
from .layouts import Layouts, load_layouts

__all__ = ["generate", "GeneratedSet", "write_file", "corrupt", "CORRUPT_KINDS", "go_name",
           "SCENARIO", "Layouts", "load_layouts"]
