import os
import subprocess


def run(command, args):
    # ruleid: subprocess-shell-true
    subprocess.run(command, shell=True, check=True)
    # ruleid: subprocess-shell-true
    subprocess.check_output(f"ls {args}", shell=True)
    # ruleid: subprocess-shell-true
    os.system(command)
    # ok: subprocess-shell-true
    subprocess.run(["ls", args], check=True)
    # ok: subprocess-shell-true
    subprocess.run(["ls", args], shell=False, check=True)
