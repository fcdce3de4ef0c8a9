//! An INI parser with Python `configparser.ConfigParser` semantics as Swift and
//! paste.deploy configure it. (Stub: being implemented.)
