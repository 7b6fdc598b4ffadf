//! Servers that run only HTTPS (Exchange 2010 installs POP3 and IMAP4 stopped): with
//! `--affinity service` the HTTPS relay serves them while the other relays' tables have
//! them down; with `--affinity server` nothing is served. The same code as `--backend`,
//! with two demo servers that start only their web service.
