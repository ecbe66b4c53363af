"""The box's services: what the HTTP (and later MQTT) API calls; each owns its tables in BoxDb."""
