"""``python -m aar.evalserver``: run the eval server alone (``aar serve`` starts it beside the hub)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    """Parse flags, build the app over AAR_HOME and serve it with uvicorn."""
    import uvicorn

    from aar.config import get_settings
    from aar.evalserver.app import create_app
    from aar.evalserver.config import load_config

    parser = argparse.ArgumentParser(prog="python -m aar.evalserver", description=__doc__)
    parser.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 8710)")
    parser.add_argument("--config", type=Path, default=None, help="TOML file of EvalServerConfig")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_config(args.config, host=args.host, port=args.port)
    app = create_app(get_settings(), config)
    uvicorn.run(app, host=config.host, port=config.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()
