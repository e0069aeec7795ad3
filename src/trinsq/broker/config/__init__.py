"""The broker's configuration: nsqd's options (one attrs class), its flags and TOML keys, the
GET/PUT /config API, and the TLS contexts built from them."""
