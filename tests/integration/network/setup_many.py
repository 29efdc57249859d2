"""Run as a separate process: set up N pods on a shared state dir, print their IPs."""

from __future__ import annotations

import json
import sys

from crid.network.api import NetworkOptions, PodNetworkRequest
from crid.network.bridge import BridgeNetwork

if __name__ == "__main__":
    opts = NetworkOptions(**json.loads(sys.argv[1]))
    net = BridgeNetwork(opts)
    ips = [net.setup(PodNetworkRequest(pod_id, path)).ips[0]
           for pod_id, path in json.loads(sys.argv[2])]
    print(json.dumps(ips))
