from flask import Flask

app = Flask(__name__)
# ruleid: flask-debug-enabled
app.debug = True
# ruleid: flask-debug-enabled
app.config["DEBUG"] = True
# ruleid: flask-debug-enabled
app.config.update(DEBUG=True, TESTING=False)
# ok: flask-debug-enabled
app.config.update(DEBUG=False)


def main() -> None:
    # ruleid: flask-debug-enabled, flask-development-server
    app.run(host="127.0.0.1", debug=True)


def dev() -> None:
    # ruleid: flask-development-server
    app.run(host="127.0.0.1")


def other(subprocess, cmd) -> None:
    # ok: flask-development-server
    subprocess.run(cmd, check=True)
