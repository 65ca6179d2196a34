"""What every part uses, and nothing of the method: file formats and atomic writes (`io`), logging
(`logs`), provenance and the rules' code hashes (`provenance`), the typed JSON records jobs hand to
each other (`records`), the results folder's run lock (`runlock`), memory estimates (`memory`) and
statistics (`stats`: bootstrap, rank correlation, Holm). Imports no other cofitune package.
"""
