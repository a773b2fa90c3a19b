# Shared by scripts/labelstudio_check.sh and scripts/labelstudio_live_check.sh (sourced, not run):
# a throwaway Label Studio on localhost with its default SQLite, in its own venv.
LS_VENV=${LS_VENV:-.labelstudio-venv}
PORT=${PORT:-8089}
WORK=$(mktemp -d)
TOKEN=tavaal-check-$(date +%s)
LS_PID=

# ls_install EXTRA: Label Studio and its SDK in $LS_VENV, tavaal[EXTRA] in .venv.
ls_install() {
    [ -x "$LS_VENV/bin/label-studio" ] || { python3 -m venv "$LS_VENV" && "$LS_VENV/bin/pip" install -q label-studio label-studio-sdk; }
    .venv/bin/python -m pip install -q -e ".[$1]"
    "$LS_VENV/bin/pip" show label-studio label-studio-sdk | grep -E '^(Name|Version)'
}

# ls_pool N: 60 small images of three colours (red, green, blue in turn) in $WORK/pool, the first
# N of them in $WORK/labels.csv (path,label).
ls_pool() {
    .venv/bin/python - "$WORK" "$1" <<'PY'
import sys, numpy as np
from pathlib import Path
from PIL import Image
work, n_labeled = Path(sys.argv[1]), int(sys.argv[2])
root = work / "pool"; root.mkdir(parents=True)
rng = np.random.default_rng(0)
colors = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
rows = []
for i in range(60):
    name = list(colors)[i % 3]
    arr = np.clip(np.array(colors[name]) + rng.integers(-30, 30, (16, 16, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(root / f"img{i:03d}.png")
    if i < n_labeled:
        rows.append(f"img{i:03d}.png,{name}")
(work / "labels.csv").write_text("path,label\n" + "".join(r + "\n" for r in rows))
PY
}

# ls_start POOL: serve POOL's images as local files; wait until Label Studio answers; export URL and
# LABEL_STUDIO_API_KEY (a legacy token made for this instance).
ls_start() {
    export LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true LOCAL_FILES_DOCUMENT_ROOT="$1"
    export LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true DJANGO_DB=sqlite
    "$LS_VENV/bin/label-studio" start --no-browser --port "$PORT" --data-dir "$WORK/ls-data" \
        --username check@tavaal.local --password tavaal-check-pw --user-token "$TOKEN" >"$WORK/ls.log" 2>&1 &
    LS_PID=$!
    for _ in $(seq 120); do curl -sf "http://localhost:$PORT/health" >/dev/null && break; sleep 2; done
    curl -sf "http://localhost:$PORT/health" >/dev/null || { tail -30 "$WORK/ls.log"; return 1; }
    echo "Label Studio is up on localhost:$PORT"
    export LABEL_STUDIO_API_KEY=$TOKEN URL="http://localhost:$PORT"
}

# ls_stop: stop Label Studio and remove the work folder.
ls_stop() {
    [ -n "$LS_PID" ] && { kill "$LS_PID" 2>/dev/null; wait "$LS_PID" 2>/dev/null || true; }
    rm -rf "$WORK"
}
