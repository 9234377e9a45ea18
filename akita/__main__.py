from akita.cli import main

main()
