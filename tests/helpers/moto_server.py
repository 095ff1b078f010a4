"""moto's server on 127.0.0.1 for the tests that talk to AWS APIs (EC2, Auto Scaling, SSM),
with throwaway credentials and no proxy, reset on start (moto keeps its backends per process)."""
from __future__ import annotations

import contextlib
import os
import urllib.request
from typing import Iterator

import pytest
from moto.server import ThreadedMotoServer

REGION = "us-west-2"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",  # tests register their own AMIs; loading moto's takes seconds
}
NO_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


@contextlib.contextmanager
def moto_server(**extra_env: str) -> Iterator[str]:
    """The server's URL while the block runs; `extra_env` may name it for clients that read
    their endpoint from the environment (e.g. AWS_ENDPOINT_URL_SSM="{url}")."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in AWS_ENV.items():
            mp.setenv(key, value)
        for var in NO_PROXY_VARS:
            mp.delenv(var, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            url = f"http://{host}:{port}"
            urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10)
            for key, value in extra_env.items():
                mp.setenv(key, value.format(url=url))
            yield url
        finally:
            server.stop()
