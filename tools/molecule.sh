#!/usr/bin/env bash
# Runs every molecule scenario (each directory under molecule/ with a molecule.yml),
# one after another: they share the machine's two cores. Set SCENARIOS to pick some.
set -uo pipefail
cd "$(dirname "$0")/.."
export MOLECULE_NO_LOG=false
scenarios=${SCENARIOS:-$(for f in molecule/*/molecule.yml; do basename "$(dirname "$f")"; done)}
failed=()
for scenario in $scenarios; do
    echo "--- molecule scenario $scenario"
    start=$SECONDS
    if molecule test -s "$scenario"; then
        echo "--- molecule scenario $scenario: ok ($((SECONDS - start)) s)"
    else
        echo "--- molecule scenario $scenario: FAILED ($((SECONDS - start)) s)"
        failed+=("$scenario")
    fi
done
((${#failed[@]} == 0)) || { echo "failed molecule scenarios: ${failed[*]}"; exit 1; }
