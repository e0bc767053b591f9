import ssl

import hvac
import pymongo
import requests

# ruleid: tls-verification-disabled
requests.get("https://127.0.0.1:8200/v1/sys/health", verify=False, timeout=5)
# ok: tls-verification-disabled
requests.get("https://127.0.0.1:8200/v1/sys/health", verify="ca.pem", timeout=5)
# ruleid: tls-verification-disabled
client = hvac.Client(url="https://127.0.0.1:8200", verify=False)
# ruleid: tls-verification-disabled
mongo = pymongo.MongoClient("mongodb://127.0.0.1", tls=True, tlsAllowInvalidCertificates=True)
# ruleid: tls-verification-disabled
mongo = pymongo.MongoClient("mongodb://127.0.0.1", tls=True, tlsInsecure=True)
# ruleid: tls-verification-disabled
mongo = pymongo.MongoClient("mongodb://127.0.0.1/?tls=true&tlsInsecure=true")
# ok: tls-verification-disabled
mongo = pymongo.MongoClient("mongodb://127.0.0.1", tls=True, tlsCAFile="ca.pem")

context = ssl.create_default_context(cafile="ca.pem")
# ruleid: tls-verification-disabled
context.check_hostname = False
# ruleid: tls-verification-disabled
context.verify_mode = ssl.CERT_NONE
# ok: tls-verification-disabled
context.verify_mode = ssl.CERT_REQUIRED
# ruleid: tls-verification-disabled
unverified = ssl._create_unverified_context()
