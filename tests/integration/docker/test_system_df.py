"""`docker system df`: images (shared layers once), containers, volumes, as the CLI reads
them."""

from __future__ import annotations

import json

from tests.integration.docker.conftest import DockerRig


def test_system_df_counts_images_containers_and_volumes(docker_rig: DockerRig) -> None:
    rig = docker_rig
    rig.cli("pull", "-q", "busybox")
    rig.cli("tag", "busybox", "busybox:again")
    rig.cli("run", "--name", "dfc", "-v", "dfvol:/v", "busybox", "sh", "-c",
            "head -c 5000 /dev/zero > /v/data; head -c 2000 /dev/zero > /w")
    client = rig.client()
    try:
        df = client.df()
    finally:
        client.close()
    image = json.loads(rig.cli("image", "inspect", "busybox").stdout)[0]
    assert [i["Id"] for i in df["Images"]] == [image["Id"]]
    assert df["Images"][0]["Containers"] == 1 and df["LayersSize"] == image["Size"]
    (c,) = df["Containers"]
    assert c["Names"] == ["/dfc"] and c["SizeRw"] == 2000
    (v,) = df["Volumes"]
    assert v["Name"] == "dfvol" and v["UsageData"]["RefCount"] == 1
    assert v["UsageData"]["Size"] >= 5000
    out = rig.cli("system", "df", "--format", "{{json .}}").stdout.splitlines()
    rows = {json.loads(line)["Type"]: json.loads(line) for line in out}
    assert rows["Images"]["TotalCount"] == "1" and rows["Images"]["Active"] == "1"
    assert rows["Containers"]["TotalCount"] == "1" and rows["Containers"]["Size"] == "2kB"
    assert rows["Local Volumes"]["TotalCount"] == "1"
    only = json.loads(rig.cli("system", "df", "-v", "--format", "{{json .}}").stdout or "{}")
    assert only  # the verbose form parses too
    rig.cli("rm", "dfc")
    rig.cli("volume", "rm", "dfvol")
