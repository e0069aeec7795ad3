"""`trinsq registry`, a drop-in nsqlookupd. Arrives with its own issue."""
