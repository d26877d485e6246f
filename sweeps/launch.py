"""Launch, resume or price a proxy sweep: the same as `scalelaw sweep`.

python sweeps/launch.py sweeps/tiny_mup.toml --dry-run
python sweeps/launch.py sweeps/tiny_mup.toml --workers 2
python sweeps/launch.py sweeps/tiny_mup.toml --backend slurm --partition gpu --time-min 120
"""

import sys

from scalelaw.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["sweep", *sys.argv[1:]]))
