"""Read config files the way Python Swift does and print what it sees, as JSON.

The differential tests of swift-common run this with the Python of a venv
where Swift is installed (SWIFT_VENV) and compare its answers with the Rust
implementation. Input on stdin: a JSON list of cases; output on stdout: a
JSON list of results, one per case, in the same order.

A case is {"mode": M, "path": P, ...}:
- "ini": the parser paste.deploy builds for Swift (ConfigParser with
  NicerInterpolation, optionxform=str, `here`/`__file__` defaults), filled
  from the file, or from a directory like Swift's ConfigDirLoader; every
  value of every section is read with get().
- "appconfig": swift.common.wsgi.appconfig(P, name=N, global_conf=G).
- "pipeline": swift.common.wsgi.loadcontext(APP, P, name=N, global_conf=G),
  reported as its filters and app (entry points are looked up, not run).
- "swift_conf": swift.common.constraints.reload_constraints() then
  swift.common.utils.validate_hash_conf() on P.
- "entry_points": the app and filter entry points of the swift distribution.
- "values": Swift's value parsers (and int(), float()) over case["values"].

A result is {"ok": ...} or {"error": CLASS, "message": STR, "line": N|null}.
"""
import configparser
import json
import os
import sys

from paste.deploy import loadwsgi

from swift.common import constraints, utils, wsgi
from swift.common.utils.config import NicerInterpolation, read_conf_dir


def error_line(exc):
    """The line configparser blames, where it names one."""
    if isinstance(exc, configparser.ParsingError):
        # Also MissingSectionHeaderError, which has .lineno.
        if getattr(exc, 'lineno', None):
            return exc.lineno
        return exc.errors[0][0] if exc.errors else None
    return getattr(exc, 'lineno', None)


def failure(exc):
    return {'error': type(exc).__name__, 'message': str(exc),
            'line': error_line(exc)}


def ini_parser(path):
    if os.path.isdir(path):
        defaults = {'here': os.path.normpath(os.path.abspath(path)),
                    '__file__': os.path.abspath(path)}
    else:
        defaults = {'here': os.path.dirname(os.path.abspath(path)),
                    '__file__': os.path.abspath(path)}
    parser = configparser.ConfigParser(defaults=defaults,
                                       interpolation=NicerInterpolation())
    parser.optionxform = str
    if os.path.isdir(path):
        read_conf_dir(parser, path)
    else:
        with open(path) as f:
            parser.read_file(f)
    return parser


def value_or_error(parser, section, key):
    try:
        return {'v': parser.get(section, key)}
    except Exception as exc:
        return {'e': type(exc).__name__}


def run_ini(case):
    parser = ini_parser(case['path'])
    defaults = [[k, value_or_error(parser, 'DEFAULT', k)]
                for k in parser.defaults()]
    sections = [[s, [[k, value_or_error(parser, s, k)]
                     for k in parser.options(s)]]
                for s in parser.sections()]
    return {'defaults': defaults, 'sections': sections}


def context_report(ctx):
    return {'name': getattr(ctx, 'name', None),
            'dist': ctx.distribution.metadata['Name'],
            'entry': ctx.entry_point_name,
            'conf': dict(ctx.config())}


def run_appconfig(case):
    conf = wsgi.appconfig(case['path'], name=case['name'],
                          global_conf=case.get('globals') or None)
    return dict(conf)


def run_pipeline(case):
    ctx = wsgi.loadcontext(loadwsgi.APP, case['path'], name=case['name'],
                           global_conf=case.get('globals') or None)
    if ctx.object_type.name == 'pipeline':
        filters, app = ctx.filter_contexts, ctx.app_context
    else:
        filters, app = [], ctx
    return {'filters': [context_report(f) for f in filters],
            'app': context_report(app),
            'global_conf': dict(ctx.global_conf)}


def run_swift_conf(case):
    utils.SWIFT_CONF_FILE = case['path']
    constraints.reload_constraints()
    effective = dict(constraints.EFFECTIVE_CONSTRAINTS)
    utils.HASH_PATH_PREFIX = b''
    utils.HASH_PATH_SUFFIX = b''
    utils.validate_hash_conf()
    return {'constraints': effective,
            'prefix': utils.HASH_PATH_PREFIX.hex(),
            'suffix': utils.HASH_PATH_SUFFIX.hex()}


def run_values(case):
    from swift.common.utils import config as c

    def outcome(f, v):
        try:
            r = f(v)
        except ValueError as exc:
            return {'error': str(exc)}
        if isinstance(r, tuple):
            return {'ok': [repr(r[0]), r[1]]}
        if isinstance(r, float):
            return {'ok': repr(r)}
        return {'ok': r}

    parsers = {
        'int': int,
        'float': float,
        'config_true_value': c.config_true_value,
        'config_auto_int_value': lambda v: c.config_auto_int_value(v, 7),
        'non_negative_float': c.non_negative_float,
        'non_negative_int': c.non_negative_int,
        'config_positive_int_value': c.config_positive_int_value,
        'config_positive_float_value': c.config_positive_float_value,
        'config_percent_value': c.config_percent_value,
        'config_fallocate_value': c.config_fallocate_value,
        'list_from_csv': utils.list_from_csv,
    }
    return [[name, v, outcome(f, v)] for v in case['values']
            for name, f in parsers.items()]


def run_entry_points(case):
    from importlib import metadata
    eps = metadata.distribution('swift').entry_points
    return {'app': sorted(eps.select(group='paste.app_factory').names),
            'filter': sorted(eps.select(group='paste.filter_factory').names)}


MODES = {'ini': run_ini, 'appconfig': run_appconfig,
         'pipeline': run_pipeline, 'swift_conf': run_swift_conf,
         'entry_points': run_entry_points, 'values': run_values}


def main():
    results = []
    for case in json.load(sys.stdin):
        try:
            results.append({'ok': MODES[case['mode']](case)})
        except Exception as exc:
            results.append(failure(exc))
    json.dump(results, sys.stdout)


if __name__ == '__main__':
    main()
