"""What the records say: tables (``summary``), paired statistics (``stats``), the report's figures
(``report``) and the Ranker's and discriminator's diagnostics (``diagnostics``)."""
