#!/usr/bin/env python3
"""Two-node Ambit demo. Not available yet: the agent data path has not landed."""
import sys

print("ambit demo: the agent data path is not implemented yet.\n"
      "When it lands, this demo builds two node namespaces with a client pod and two\n"
      "server pods, starts an ambit-agent per node from tools/examples/demo.yaml, sends\n"
      "traffic through HBONE and shows the identities and a capture of the TLS bytes.",
      file=sys.stderr)
sys.exit(1)
