#!/bin/sh
# check_layering.sh ROOT — the include rules the build cannot express (every module's include
# root is the project root, for "module/module.h"); exits 1 and lists each offending line.
#  1. A module's internal headers (*_int.h, and the ones listed in INTERNAL) are included only
#     from that module's own directory and its tests (tests/<module>/).
#  2. core/ includes no other module.
#  3. Library modules include nothing from app/, bench/, tests/ or synth/ (the generators are
#     for app, bench and tests).
#  4. Modules listed in ALLOWED include only the modules listed for them (and themselves).
set -u
ROOT=${1:-.}
cd "$ROOT" || exit 2
INTERNAL="detect/kernel_body.h vector/redact_rules.h"
# module:allowed,modules — which other modules a module may include at all
ALLOWED="notify:core"
bad=0
files=$(find . -path ./build -prune -o -path './build-*' -prune -o -path ./.git -prune -o \
        \( -name '*.c' -o -name '*.h' -o -name '*.cpp' \) -print | sed 's|^\./||' | sort)

for f in $files; do
    dir=${f%%/*}
    case $f in tests/*) sub=${f#tests/}; tdir=${sub%%/*} ;; *) tdir= ;; esac
    # "module/header.h" includes of this file
    for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([a-z_0-9]*\/[^"]*\)".*/\1/p' "$f"); do
        mod=${inc%%/*}
        internal=no
        case $inc in *_int.h) internal=yes ;; esac
        for i in $INTERNAL; do [ "$inc" = "$i" ] && internal=yes; done
        if [ $internal = yes ] && [ "$mod" != "$dir" ] && [ "$mod" != "$tdir" ]; then
            echo "$f: includes $inc, an internal header of $mod/"
            bad=1
        fi
        if [ "$dir" = core ] && [ "$mod" != core ]; then
            echo "$f: core/ includes $inc (core depends on nothing)"
            bad=1
        fi
        for rule in $ALLOWED; do
            [ "$dir" = "${rule%%:*}" ] && [ "$mod" != "$dir" ] || continue
            case ",${rule#*:}," in *",$mod,"*) ;; *)
                echo "$f: ${dir}/ includes $inc (it may include only ${rule#*:})"; bad=1 ;;
            esac
        done
        case $dir in app | bench | tests) ;; *)
            case $mod in app | bench | tests | synth)
                [ "$mod" != "$dir" ] && { echo "$f: library code includes $inc"; bad=1; } ;;
            esac ;;
        esac
    done
done
[ $bad = 0 ] && echo "layering: ok"
exit $bad
