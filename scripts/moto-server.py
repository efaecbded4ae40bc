"""moto's S3 server (the test store), with one S3 behaviour moto lacks: the bucket's CORS rule
applied to browser-form POST uploads (POST Object).

Run with the Python of moto's virtualenv, with moto_server's arguments:
    .tools/moto-venv/bin/python3 scripts/moto-server.py -H 127.0.0.1 -p 9000

moto 5 answers a form POST to a bucket without CORS headers whatever the bucket's CORS
configuration (it adds them to GET and PUT answers only), so under MOTO_DISABLE_GLOBAL_CORS a page
could never read the answer to an upload the bucket allows. S3 adds them when a rule of the bucket
allows the request's Origin and the POST method: so does this, with moto's own origin matching,
and leaves every other request to moto as it is. The object is stored either way, as in S3 (CORS
only decides what the page may read).

It also logs each form upload's object key (a form POST's request line has none) as a line
`form-post <status> <key>`, so that the tests can count the POSTs of each chunk object.
"""

import sys

from moto.s3.responses import S3Response
from moto.s3.utils import cors_matches_origin
from moto.server import main

_bucket_post = S3Response._bucket_response_post


def _bucket_post_with_cors(self, request, bucket_name):
    answer = _bucket_post(self, request, bucket_name)
    key = (self.querystring.get("key") or [None])[0]
    if key:
        status = answer[0] if isinstance(answer, tuple) else "-"
        print(f"form-post {status} {key}", file=sys.stderr, flush=True)
    origin = request.headers.get("Origin")
    if not origin or not isinstance(answer, tuple) or len(answer) != 3:
        return answer
    status, headers, body = answer
    try:
        rules = self.backend.get_bucket(bucket_name).cors
    except Exception:  # no such bucket: moto's answer says so
        return answer
    for rule in rules:
        if "POST" in (rule.allowed_methods or []) and cors_matches_origin(origin, rule.allowed_origins or []):
            headers = dict(headers)
            headers["Access-Control-Allow-Origin"] = origin
            if rule.exposed_headers:
                headers["Access-Control-Expose-Headers"] = ", ".join(rule.exposed_headers)
            return status, headers, body
    return answer


S3Response._bucket_response_post = _bucket_post_with_cors

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())
