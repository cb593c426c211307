"""Vertically partitioned training: parties keep their columns, only encrypted hidden-layer
representations travel.

Parties hold disjoint columns of the same customers (and every party the label). Each trains
a local ``n - n - 2n - n - 1`` network on its own columns and sends the host its third hidden
layer for every training customer; the host joins them on the customers' pseudonyms and
trains its own network on them. To predict, the host names customers (by pseudonym only);
each party looks its rows up, computes their representations and returns them. No raw column
value and no raw customer ID ever leaves its party. Every message is sealed to its
recipient's X25519 key, stored under the SHA-256 of its ciphertext, and announced by a signed
``blob`` record in the verifiable log.

One module per concern:

* ``errors``      -- the receiver's refusals and the timeout (exit codes 4 and 8);
* ``crypto``      -- X25519 box keys, sealed boxes, key ids;
* ``ids``         -- the parties' shared ID key and customer pseudonyms (HMAC-SHA256);
* ``store``       -- the content-addressed store interface and the directory store;
* ``roster``      -- the participants and their public keys;
* ``messages``    -- message plaintexts and their announcements (record descriptions);
* ``exchange``    -- send (seal, store, announce) and receive (every check, then open);
* ``data``        -- reading a party's columns with clear errors; the shared split;
* ``nets``        -- the networks and their training (PyTorch);
* ``party`` / ``host`` -- each side's round;
* ``compose``     -- encoder, host and composed containers;
* ``orchestrate`` -- ``pyastore-train vertical``: every participant as its own process;
* ``metrics`` / ``report`` / ``experiment`` -- evaluation, the report and the experiment;
* ``audit``       -- a party's scan of the store and the log for its own raw rows;
* ``cli``         -- ``pyastore-train vertical``, ``vertical-party``, ``vertical-host``.

The protocol, formats and threat model are in docs/VERTICAL.md. Importing this package
imports neither torch nor numpy.

Python API (the same steps as the command line)::

    from trainer.vertical.exchange import Exchange
    from trainer.vertical.party import PartyConfig, run_party
    from trainer.vertical.host import Host, HostConfig
    from trainer.vertical.orchestrate import VerticalConfig, run_vertical
"""
