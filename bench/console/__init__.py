"""Staff console page times at city scale (see __main__)."""
