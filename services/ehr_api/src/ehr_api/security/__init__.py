"""Cryptography for data at rest: the encryption keyring and sealed secret values."""
