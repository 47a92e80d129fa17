#!/usr/bin/env bash
echo "Bail out! test-dbdown.sh is being written"
exit 1
