// Nothing to build: this package only names the crate whose source holds the headers.
