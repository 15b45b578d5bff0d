"""The customer portal (DESIGN §7c): accounts of the vendor's customers, their sessions and their licenses."""
