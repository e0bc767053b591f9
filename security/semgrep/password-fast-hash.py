import hashlib
import os


def store_user(db, name, password):
    # ruleid: password-fast-hash
    digest = hashlib.sha256(password.encode()).hexdigest()
    db.users.insert_one({"name": name, "password_hash": digest})


def check(user, form):
    # ruleid: password-fast-hash
    return hashlib.md5(form.password.encode()).hexdigest() == user["password_hash"]


def legacy(user_password):
    hasher = hashlib.sha1()
    # ruleid: password-fast-hash
    hasher.update(user_password.encode())
    return hasher.hexdigest()


def store_user_safe(db, name, password):
    salt = os.urandom(16)
    # ok: password-fast-hash
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    db.users.insert_one({"name": name, "salt": salt, "password_hash": digest})


def token_hash(token):
    # ok: password-fast-hash
    return hashlib.sha256(token.encode()).hexdigest()
