# Runs Python Swift's listing_formats middleware over the cases on stdin
# (JSON, one list) and prints what it answered (JSON, one list), for the
# differential test in tests.rs. Run with the reference venv's python.
#
# A case: method, path (raw, query included), headers [[name, value]],
# status ("200 OK"), resp_headers [[name, value]], body (hex),
# take_charge (the app sets swift.format_listing to False).
# An answer: status, headers, body (hex), seen (the query string and
# Accept the app got, or null), warnings (the filter's log lines), or
# raised (the exception's type and text) when the middleware raised.
import io
import json
import sys

from swift.common import swob
from swift.common.middleware import listing_formats


class Log(object):
    def __init__(self):
        self.lines = []

    def warning(self, msg, *args):
        self.lines.append(msg % args)

    error = exception = info = debug = warning


def run(case):
    seen = {}

    def app(env, start_response):
        seen['query'] = env.get('QUERY_STRING')
        seen['accept'] = env.get('HTTP_ACCEPT')
        if case.get('take_charge'):
            env['swift.format_listing'] = False
        start_response(case['status'], [tuple(h) for h in case['resp_headers']])
        return [bytes.fromhex(case['body'])]

    mw = listing_formats.filter_factory({})(app)
    mw.logger = Log()
    path, _, query = case['path'].partition('?')
    env = swob.Request.blank('/').environ
    env['REQUEST_METHOD'] = case['method']
    env['PATH_INFO'] = swob.wsgi_unquote(path)
    env['QUERY_STRING'] = query
    env['wsgi.input'] = io.BytesIO(b'')
    for name, value in case['headers']:
        key = 'HTTP_' + name.upper().replace('-', '_')
        env[key] = env[key] + ',' + value if key in env else value
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured['status'] = status
        captured['headers'] = [[k, str(v)] for k, v in headers]

    try:
        body = b''.join(mw(env, start_response))
    except Exception as e:
        return {'raised': '%s: %s' % (type(e).__name__, e),
                'warnings': mw.logger.lines}
    return {
        'status': captured['status'],
        'headers': captured['headers'],
        'body': body.hex(),
        'seen': seen or None,
        'warnings': mw.logger.lines,
    }


def main():
    cases = json.load(sys.stdin)
    json.dump([run(c) for c in cases], sys.stdout)


if __name__ == '__main__':
    main()
