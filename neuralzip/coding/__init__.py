"""Integer pmfs -> constriction streams: the one coding layer every model uses."""
