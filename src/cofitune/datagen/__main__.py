"""`python -m cofitune.datagen [out_dir]`: regenerate the shipped data (default: data/)."""

import sys
from pathlib import Path

from cofitune.datagen import write_default_data

for name, path in write_default_data(Path(sys.argv[1] if len(sys.argv) > 1 else "data")).items():
    print(f"{name}\t{path}")
