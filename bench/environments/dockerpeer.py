"""Container-to-container networking: a user-defined bridge network of the run's own, and a
peer container on it where the clients of client/server workloads run.

This is what Compose sets up for a two-tier application: each service in its own container on
one user-defined bridge, reaching the other by its address there, with no port publishing,
docker-proxy or NAT on the path. The peer runs the same workload image as the server, so the
client binaries are the very ones the host-to-container variants use on the host.

Both carry the label bench.run_id (and bench.environment): teardown removes them, and
`bench cleanup` finds what a killed run left.
"""

from __future__ import annotations

from typing import Any

from .docker import LABEL_ENV, LABEL_RUN, STREAM_TIMEOUT, DockerEnvironment, client


def create_network(docker_client, run_id: str, environment: str):
    """A bridge network for the server and its peer. Docker gives it a free private subnet and
    an embedded DNS that resolves container names, as in a Compose project."""
    return docker_client.networks.create(
        f"bench-{run_id}-{environment}", driver="bridge", check_duplicate=True,
        labels={LABEL_RUN: run_id, LABEL_ENV: environment})


def remove_network(network) -> None:
    import docker.errors

    try:
        network.remove()
    except docker.errors.NotFound:
        pass


def address_on(container, network) -> str:
    """A container's IPv4 address on one network."""
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]


class PeerContainer(DockerEnvironment):
    """The client side of a container-to-container pair: execs in a second container of the
    workload image on the server's network. It belongs to the server's environment, which
    provisions and removes it; the runner sees it only as `ctx.client`."""

    def __init__(self, server: DockerEnvironment, network):
        super().__init__(f"{server.name}-client", {"network": "bridge", "storage": "overlay"}, server.run_id)
        self.server_name = server.name
        self.bridge = network  # the server's: it removes the network, once both containers are gone

    def provision(self, scratch_root: str, n_ports: int) -> None:
        from .. import image

        self._client = client()
        self._stream = client(timeout=STREAM_TIMEOUT)
        self.image = image.docker_image(self._client, image.Recipe.default())
        # Labelled with the server's environment name: cleanup and tests find the pair together.
        self.container = self._client.containers.run(
            self.image.id, name=f"bench-{self.run_id}-{self.server_name}-client",
            labels={LABEL_RUN: self.run_id, LABEL_ENV: self.server_name, "bench.role": "client"},
            detach=True, init=True, command=["sleep", "infinity"], network=self.bridge.name)
        self.workdir = "/tmp"

    def address(self) -> str:
        return address_on(self.container, self.bridge)

    def metadata(self) -> dict[str, Any]:
        return {"client_container_id": self.container.id[:12], "client_address": self.address()}
